// A Task and its history: each version of Task/[id]/_history with who changed it (the
// version-author extension of its meta, docs/api.md), what it changed and when.
import { useEffect, useState } from 'preact/hooks';
import { Bundle, formatDate, get, Resource } from './fhir';
import { link } from './router';
import { differences } from './tasks';
import { nameOf, resolveNames } from './names';
import { taskTitle } from './worklist';

interface Version {
  id: string;
  when: string;
  method: string;
  author: string; // a person's name when it can be read, else the reference or display
  changes: string[];
}

const AUTHOR = 'http://concerto.dev/fhir/StructureDefinition/version-author';

// The version-author's valueReference of a version, if it has one.
function authorOf(r: Resource | undefined): { reference?: string; display?: string } | undefined {
  return r?.meta?.extension?.find((e: any) => e?.url === AUTHOR)?.valueReference;
}

export function TaskDetail({ id }: { id: string }) {
  const [task, setTask] = useState<Resource | null>(null);
  const [versions, setVersions] = useState<Version[]>([]);
  const [error, setError] = useState('');

  useEffect(() => {
    Promise.all([get<Resource>(`Task/${id}`), get<Bundle>(`Task/${id}/_history?_count=100`)])
      .then(async ([t, h]) => {
        await resolveNames([t.for?.reference,
          ...(h.entry ?? []).flatMap((e) => [e.resource?.owner?.reference, authorOf(e.resource)?.reference])]);
        setTask(t);
        const entries = (h.entry ?? []).slice().reverse(); // oldest first
        const out: Version[] = [];
        let previous: Resource | undefined;
        for (const e of entries) {
          const r = e.resource;
          const when = r?.meta?.lastUpdated ?? (e as any).response?.lastModified ?? '';
          const method = (e as any).request?.method ?? '';
          const by = authorOf(r);
          out.push({
            id: r?.meta?.versionId ?? '',
            when,
            method,
            author: by ? nameOf(by.reference, by.display) : '',
            changes: !r ? ['deleted'] : previous ? differences(previous, r, (ref) => nameOf(ref)) : [`created as ${r.status}`],
          });
          previous = r;
        }
        setVersions(out.reverse());
      })
      .catch((e) => setError((e as Error).message));
  }, [id]);

  if (error) return <main id="main" tabIndex={-1}><h1>Task</h1><p role="alert" class="error">Could not load the task: {error}</p></main>;
  if (!task) return <main id="main" tabIndex={-1}><h1>Task</h1><p role="status">Loading…</p></main>;
  const patient = task.for?.reference?.replace(/^Patient\//, '');
  return (
    <main id="main" tabIndex={-1}>
      <p class="crumbs"><a {...link('/')}>My worklist</a> ›</p>
      <h1>{taskTitle(task)}</h1>
      <dl class="facts">
        <dt>Status</dt><dd>{task.status}{task.statusReason?.text ? ` (${task.statusReason.text})` : ''}</dd>
        <dt>Priority</dt><dd>{task.priority ?? 'routine'}</dd>
        <dt>Due</dt><dd>{formatDate(task.restriction?.period?.end) || 'no due time'}</dd>
        <dt>Owner</dt><dd>{task.owner ? nameOf(task.owner.reference, task.owner.display) : 'unassigned'}</dd>
        <dt>Patient</dt><dd>{patient ? <a {...link(`/patients/${patient}`)}>{nameOf(task.for.reference, task.for.display)}</a> : 'none'}</dd>
        <dt>Version</dt><dd>{task.meta?.versionId}, saved {formatDate(task.meta?.lastUpdated)}</dd>
      </dl>
      <h2>History</h2>
      <ol class="history">
        {versions.map((v) => (
          <li key={v.id}>
            <span class="when">Version {v.id}, {formatDate(v.when)}{v.author ? <>, by <span class="author">{v.author}</span></> : ''}</span>
            <ul>{(v.changes.length ? v.changes : ['no change to status, owner, priority, due time or description']).map((c) => <li key={c}>{c}</li>)}</ul>
          </li>
        ))}
      </ol>
    </main>
  );
}
