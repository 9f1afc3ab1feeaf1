// My worklist: the buckets of Task/$worklist, with claim, done, hold and reassign on each
// Task. Changes are shown at once and undone when the server refuses them; a 412 (someone
// changed the Task meanwhile) shows what changed and lets the person decide again.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { current } from './auth';
import { Bundle, formatDate, humanName, request, Resource, search } from './fhir';
import { nameOf, resolveNames } from './names';
import { link, navigate } from './router';
import { Change, changeTask, ConflictError, differences } from './tasks';

const BUCKET_SYSTEM = 'http://concerto.dev/fhir/CodeSystem/worklist-bucket';
const TOTAL_URL = 'http://concerto.dev/fhir/StructureDefinition/worklist-total';

interface Bucket {
  code: string;
  title: string;
  total: number;
  ids: string[];
}

interface Conflict {
  error: ConflictError;
  change: Change;
  what: string;
}

export function taskTitle(t: Resource): string {
  return t.description || t.code?.text || t.code?.coding?.[0]?.display || t.code?.coding?.[0]?.code || `Task ${t.id}`;
}

function parseWorklist(b: Bundle): { buckets: Bucket[]; tasks: Map<string, Resource> } {
  const buckets: Bucket[] = [];
  const tasks = new Map<string, Resource>();
  for (const e of b.entry ?? []) {
    const r = e.resource;
    if (!r) continue;
    if (r.resourceType === 'List') {
      const code = r.code?.coding?.find((c: any) => c.system === BUCKET_SYSTEM)?.code ?? '';
      const total = r.extension?.find((x: any) => x.url === TOTAL_URL)?.valueInteger ?? 0;
      const ids = (r.entry ?? []).map((x: any) => String(x.item?.reference ?? '').replace(/^Task\//, ''));
      buckets.push({ code, title: r.title ?? code, total, ids });
    } else if (r.resourceType === 'Task' && r.id) {
      tasks.set(r.id, r);
    }
  }
  return { buckets, tasks };
}

function Help({ onClose }: { onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="help-title" onClose={onClose}>
      <h2 id="help-title">Keyboard shortcuts</h2>
      <dl class="keys">
        <dt><kbd>j</kbd> / <kbd>k</kbd></dt><dd>next / previous task</dd>
        <dt><kbd>Enter</kbd></dt><dd>open the task</dd>
        <dt><kbd>c</kbd></dt><dd>claim the task</dd>
        <dt><kbd>d</kbd></dt><dd>mark it done</dd>
        <dt><kbd>h</kbd></dt><dd>put it on hold, or resume it</dd>
        <dt><kbd>r</kbd></dt><dd>reassign it</dd>
        <dt><kbd>?</kbd></dt><dd>this help</dd>
      </dl>
      <form method="dialog"><button type="submit">Close</button></form>
    </dialog>
  );
}

function Reassign({ task, onDone, onCancel }: { task: Resource; onDone: (owner: string) => void; onCancel: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [people, setPeople] = useState<Resource[] | null>(null);
  const [choice, setChoice] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    ref.current?.showModal();
    search('Practitioner?_count=200&_sort=family')
      .then((rs) => { setPeople(rs); setChoice(rs[0] ? `Practitioner/${rs[0].id}` : ''); })
      .catch((e) => setError((e as Error).message));
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="reassign-title" onClose={onCancel}>
      <h2 id="reassign-title">Reassign “{taskTitle(task)}”</h2>
      {error && <p role="alert" class="error">{error}</p>}
      {!people && !error && <p>Loading people…</p>}
      {people && (
        <form onSubmit={(e) => { e.preventDefault(); if (choice) onDone(choice); }}>
          <label for="reassign-to">New owner</label>
          <select id="reassign-to" value={choice} onChange={(e) => setChoice((e.target as HTMLSelectElement).value)}>
            {people.map((p) => <option key={p.id} value={`Practitioner/${p.id}`}>{humanName(p)}</option>)}
          </select>
          <div class="buttons">
            <button type="submit">Reassign</button>
            <button type="button" class="quiet" onClick={() => ref.current?.close()}>Cancel</button>
          </div>
        </form>
      )}
    </dialog>
  );
}

export function Worklist() {
  const me = current()?.fhirUser;
  const [priority, setPriority] = useState('');
  const [bucket, setBucket] = useState('');
  const [code, setCode] = useState('');
  const [applied, setApplied] = useState({ priority: '', bucket: '', code: '' });
  const [state, setState] = useState<'loading' | 'ready' | 'error'>('loading');
  const [error, setError] = useState('');
  const [buckets, setBuckets] = useState<Bucket[]>([]);
  const [tasks, setTasks] = useState<Map<string, Resource>>(new Map());
  const [, setNamesRead] = useState(0);
  const [selected, setSelected] = useState(0);
  const [busy, setBusy] = useState<Set<string>>(new Set());
  const [notice, setNotice] = useState('');
  const [failure, setFailure] = useState('');
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [help, setHelp] = useState(false);
  const [reassign, setReassign] = useState<Resource | null>(null);
  const keyHandler = useRef<(e: KeyboardEvent) => void>();

  const load = useCallback(async (quiet = false) => {
    if (!quiet) setState('loading');
    const q = new URLSearchParams({ _count: '50' });
    if (applied.priority) q.set('priority', applied.priority);
    if (applied.bucket) q.set('bucket', applied.bucket);
    if (applied.code) q.set('code', applied.code);
    try {
      const b = (await request<Bundle>(`Task/$worklist?${q}`)).body;
      const parsed = parseWorklist(b);
      setBuckets(parsed.buckets);
      setTasks(parsed.tasks);
      setState('ready');
      await resolveNames([...parsed.tasks.values()].flatMap((t) => [t.for?.reference, t.owner?.reference]));
      setNamesRead((n) => n + 1);
    } catch (e) {
      setError((e as Error).message);
      setState('error');
    }
  }, [applied]);

  useEffect(() => { void load(); }, [load]);

  const order = buckets.flatMap((b) => b.ids).filter((id) => tasks.has(id));
  const selectedId = order[Math.min(selected, order.length - 1)];

  async function act(task: Resource, change: Change, what: string) {
    if (busy.has(task.id!)) return;
    setFailure('');
    setNotice('');
    setConflict(null);
    // shown at once; the server's answer replaces it, or the old one comes back
    const optimistic: Resource = { ...task, ...(change.status ? { status: change.status } : {}) };
    if (change.owner !== undefined) optimistic.owner = change.owner ? { reference: change.owner } : undefined;
    setTasks((m) => new Map(m).set(task.id!, optimistic));
    setBusy((s) => new Set(s).add(task.id!));
    try {
      const saved = await changeTask(task, change);
      setTasks((m) => new Map(m).set(task.id!, saved));
      setNotice(`${what}: ${taskTitle(saved)}`);
      await load(true);
    } catch (e) {
      setTasks((m) => new Map(m).set(task.id!, task));
      if (e instanceof ConflictError) {
        await resolveNames([e.mine.owner?.reference, e.theirs.owner?.reference]);
        setConflict({ error: e, change, what });
        setTasks((m) => new Map(m).set(task.id!, e.theirs));
      } else {
        setFailure(`Could not ${what.toLowerCase()} “${taskTitle(task)}”: ${(e as Error).message}`);
      }
    } finally {
      setBusy((s) => { const n = new Set(s); n.delete(task.id!); return n; });
    }
  }

  const claim = (t: Resource) => me ? act(t, { owner: me }, 'Claimed')
    : setFailure('Cannot claim: the sign-in did not say which Practitioner you are (no id_token with fhirUser: your account is linked to no Practitioner, or a server on PostgreSQL was started without --secrets-key and --signing-key)');
  const done = (t: Resource) => act(t, { status: 'completed' }, 'Completed');
  const hold = (t: Resource) => t.status === 'on-hold' ? act(t, { status: 'in-progress' }, 'Resumed')
    : act(t, { status: 'on-hold' }, 'Put on hold');

  // the handler of the latest render: a key pressed right after a render acts on what it shows
  keyHandler.current = (e: KeyboardEvent) => {
    const target = e.target as HTMLElement;
    if (e.ctrlKey || e.metaKey || e.altKey || target.closest('input, select, textarea, dialog')) return;
    const t = selectedId ? tasks.get(selectedId) : undefined;
    switch (e.key) {
      case 'j': setSelected((i) => Math.min(i + 1, Math.max(order.length - 1, 0))); break;
      case 'k': setSelected((i) => Math.max(i - 1, 0)); break;
      case '?': setHelp(true); break;
      case 'c': if (t) void claim(t); break;
      case 'd': if (t) void done(t); break;
      case 'h': if (t) void hold(t); break;
      case 'r': if (t) setReassign(t); break;
      case 'Enter': if (t && target === document.body) navigate(`/tasks/${t.id}`); break;
      default: return;
    }
    e.preventDefault();
  };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => keyHandler.current?.(e);
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);

  useEffect(() => {
    document.querySelector<HTMLElement>('tr.selected')?.scrollIntoView({ block: 'nearest' });
  }, [selected]);

  function label(ref: string | undefined): string {
    if (!ref) return '';
    if (ref === me) return 'You';
    return nameOf(ref);
  }

  return (
    <main id="main" tabIndex={-1} class="worklist">
      <div class="title-row">
        <h1>My worklist</h1>
        <button type="button" class="quiet" onClick={() => setHelp(true)} aria-keyshortcuts="?">Keyboard shortcuts</button>
      </div>
      <form class="filters" onSubmit={(e) => { e.preventDefault(); setApplied({ priority, bucket, code }); }}>
        <div>
          <label for="f-bucket">Bucket</label>
          <select id="f-bucket" value={bucket} onChange={(e) => setBucket((e.target as HTMLSelectElement).value)}>
            <option value="">All</option>
            <option value="overdue">Overdue</option>
            <option value="due-today">Due today</option>
            <option value="upcoming">Upcoming</option>
            <option value="unassigned">Unassigned</option>
            <option value="on-hold">On hold</option>
          </select>
        </div>
        <div>
          <label for="f-priority">Priority</label>
          <select id="f-priority" value={priority} onChange={(e) => setPriority((e.target as HTMLSelectElement).value)}>
            <option value="">Any</option>
            <option value="stat">Stat</option>
            <option value="asap">ASAP</option>
            <option value="urgent">Urgent</option>
            <option value="routine">Routine</option>
          </select>
        </div>
        <div>
          <label for="f-code">Task code</label>
          <input id="f-code" value={code} placeholder="system|code" onInput={(e) => setCode((e.target as HTMLInputElement).value)} />
        </div>
        <button type="submit">Apply</button>
      </form>

      <div aria-live="polite" class="notice">{notice}</div>
      {failure && <p role="alert" class="error">{failure}</p>}
      {conflict && (
        <section role="alert" class="conflict" aria-labelledby="conflict-title">
          <h2 id="conflict-title">Someone else changed “{taskTitle(conflict.error.theirs)}”</h2>
          <p>
            You decided on version {conflict.error.mine.meta?.versionId}; the current one is
            version {conflict.error.theirs.meta?.versionId}
            {conflict.error.theirs.meta?.lastUpdated ? `, saved ${formatDate(conflict.error.theirs.meta.lastUpdated)}` : ''}.
            What changed:
          </p>
          <ul>{differences(conflict.error.mine, conflict.error.theirs, label).map((d) => <li key={d}>{d}</li>)}</ul>
          <div class="buttons">
            <button type="button" onClick={() => { const c = conflict; setConflict(null); void act(c.error.theirs, c.change, c.what); }}>
              Try again on the current version
            </button>
            <button type="button" class="quiet" onClick={() => { setConflict(null); void load(true); }}>Keep their change</button>
          </div>
        </section>
      )}

      {state === 'loading' && <p class="status" role="status">Loading your worklist…</p>}
      {state === 'error' && (
        <div role="alert" class="error">
          <p>Could not load your worklist: {error}</p>
          <button type="button" onClick={() => load()}>Try again</button>
        </div>
      )}
      {state === 'ready' && order.length === 0 && (
        <p class="empty">Nothing to do{applied.bucket || applied.priority || applied.code ? ' with these filters' : ''}: no open tasks are waiting for you.</p>
      )}
      {state === 'ready' && buckets.filter((b) => b.ids.length > 0).map((b) => (
        <section key={b.code} class="bucket" aria-labelledby={`b-${b.code}`}>
          <h2 id={`b-${b.code}`}>{b.title} <span class="count">{b.total}</span></h2>
          <table>
            <thead>
              <tr><th scope="col">Task</th><th scope="col">Patient</th><th scope="col">Priority</th>
                <th scope="col">Status</th><th scope="col">Due</th><th scope="col">Owner</th>
                <th scope="col"><span class="visually-hidden">Actions</span></th></tr>
            </thead>
            <tbody>
              {b.ids.filter((id) => tasks.has(id)).map((id) => {
                const t = tasks.get(id)!;
                const isSelected = id === selectedId;
                const saving = busy.has(id);
                const title = taskTitle(t);
                return (
                  <tr key={id} class={isSelected ? 'selected' : ''} data-task={id} aria-busy={saving}
                      onClick={() => setSelected(order.indexOf(id))}>
                    <td><a {...link(`/tasks/${id}`)}>{title}</a></td>
                    <td>{t.for?.reference ? <a {...link(`/patients/${t.for.reference.replace(/^Patient\//, '')}`)}>{t.for.display || label(t.for.reference)}</a> : ''}</td>
                    <td><span class={`pill p-${t.priority ?? 'routine'}`}>{t.priority ?? 'routine'}</span></td>
                    <td class="status-cell">{t.status}{saving ? ' (saving…)' : ''}</td>
                    <td>{formatDate(t.restriction?.period?.end)}</td>
                    <td>{t.owner ? (t.owner.display || label(t.owner.reference)) : <em>unassigned</em>}</td>
                    <td class="actions">
                      <button type="button" disabled={saving || t.owner?.reference === me} onClick={() => claim(t)} aria-label={`Claim ${title}`}>Claim</button>
                      <button type="button" disabled={saving} onClick={() => done(t)} aria-label={`Done: ${title}`}>Done</button>
                      <button type="button" disabled={saving} onClick={() => hold(t)} aria-label={`${t.status === 'on-hold' ? 'Resume' : 'Hold'} ${title}`}>{t.status === 'on-hold' ? 'Resume' : 'Hold'}</button>
                      <button type="button" class="quiet" disabled={saving} onClick={() => setReassign(t)} aria-label={`Reassign ${title}`}>Reassign</button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {b.total > b.ids.length && <p class="more">Showing {b.ids.length} of {b.total}.</p>}
        </section>
      ))}
      {help && <Help onClose={() => setHelp(false)} />}
      {reassign && (
        <Reassign task={reassign} onCancel={() => setReassign(null)}
                  onDone={(owner) => { const t = reassign; setReassign(null); void act(t, { owner }, 'Reassigned'); }} />
      )}
    </main>
  );
}
