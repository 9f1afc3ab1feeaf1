// A patient's overview: who they are, their risk, their care team and their open tasks.
import { useEffect, useState } from 'preact/hooks';
import { formatDate, get, humanName, Resource, search } from './fhir';
import { link } from './router';
import { isContact, primaryCoordinator, riskOf } from './patients';
import { OPEN } from './tasks';
import { nameOf, resolveNames } from './names';
import { taskTitle } from './worklist';

interface Overview {
  patient: Resource;
  risk: string;
  teams: Resource[];
  tasks: Resource[];
  contacts: Resource[];
}

export function PatientOverview({ id }: { id: string }) {
  const [data, setData] = useState<Overview | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    const ref = `Patient/${id}`;
    Promise.all([
      get<Resource>(ref),
      search(`RiskAssessment?subject=${ref}&_sort=-date&_count=5`).catch(() => []),
      search(`CareTeam?subject=${ref}&status=active`).catch(() => []),
      search(`Task?patient=${ref}&status=${OPEN.join(',')}&_count=100`).catch(() => []),
      search(`Communication?subject=${ref}&_sort=-sent&_count=50`).catch(() => []),
    ]).then(async ([patient, risks, teams, tasks, contacts]) => {
      await resolveNames(teams.flatMap((t) => (t.participant ?? []).map((x: any) => x.member?.reference)));
      contacts = contacts.filter(isContact);
      const latest = risks.find((r) => !['entered-in-error', 'cancelled'].includes(r.status));
      setData({ patient, risk: riskOf(latest).text, teams, tasks, contacts });
    }).catch((e) => setError((e as Error).message));
  }, [id]);

  if (error) return <main id="main" tabIndex={-1}><h1>Patient</h1><p role="alert" class="error">Could not load the patient: {error}</p></main>;
  if (!data) return <main id="main" tabIndex={-1}><h1>Patient</h1><p role="status">Loading…</p></main>;
  const p = data.patient;
  const coordinator = data.teams.map(primaryCoordinator).find(Boolean);
  return (
    <main id="main" tabIndex={-1}>
      <p class="crumbs"><a {...link('/patients')}>Patients</a> ›</p>
      <h1>{humanName(p)}</h1>
      <dl class="facts">
        <dt>Birth date</dt><dd>{p.birthDate ?? 'unknown'}</dd>
        <dt>Identifiers</dt><dd>{(p.identifier ?? []).map((i: any) => i.value).join(', ') || 'none'}</dd>
        <dt>Risk</dt><dd>{data.risk || 'not assessed'}</dd>
        <dt>Primary coordinator</dt><dd>{coordinator ? nameOf(coordinator.reference, coordinator.display) : 'none'}</dd>
        <dt>Last contact</dt><dd>{formatDate(data.contacts.find((c) => c.sent)?.sent) || 'none recorded'}</dd>
      </dl>
      <h2>Open tasks</h2>
      {data.tasks.length === 0 ? <p class="empty">No open tasks.</p> : (
        <ul class="plain">
          {data.tasks.map((t) => (
            <li key={t.id}><a {...link(`/tasks/${t.id}`)}>{taskTitle(t)}</a> — {t.status}{t.restriction?.period?.end ? `, due ${formatDate(t.restriction.period.end)}` : ''}</li>
          ))}
        </ul>
      )}
      <h2>Care team</h2>
      {data.teams.length === 0 ? <p class="empty">No active care team.</p> : data.teams.map((t) => (
        <ul class="plain" key={t.id}>
          {(t.participant ?? []).map((x: any, i: number) => (
            <li key={i}>{nameOf(x.member?.reference, x.member?.display)} — {(x.role ?? []).map((r: any) => r.text || r.coding?.[0]?.display || r.coding?.[0]?.code).join(', ')}</li>
          ))}
        </ul>
      ))}
    </main>
  );
}
