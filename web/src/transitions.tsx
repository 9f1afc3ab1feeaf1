// Transitions: who is in hospital now, and the discharges of the last 30 days with their TCM
// clocks from Encounter/[id]/$tcm (docs/transitions.md, "The TCM report"). The board reads
// everything again each minute while it is shown, and on Refresh.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { formatDate, Resource, search, get } from './fhir';
import { link } from './router';
import { nameOf, resolveNames } from './names';

const TCM_CLASSES = ['IMP', 'ACUTE', 'NONAC', 'OBSENC', 'SS'];
export const REFRESH_MS = 60000;
const REQUIREMENTS: [string, string][] = [
  ['interactive-contact', 'Contact'], ['face-to-face', 'Face-to-face'], ['medication-reconciliation', 'Medication reconciliation'],
];

interface Requirement {
  status: string;
  deadline?: string;
  metAt?: string;
}

export interface Discharge {
  encounter: Resource;
  discharge?: string;
  eligible: boolean;
  complexity?: string;
  requirements: Map<string, Requirement>;
  code?: string;
  codeStatus?: string;
  reachable?: string; // provisional: the best code still reachable
  error?: string;
}

function value(p: any): any {
  if (!p) return undefined;
  const key = Object.keys(p).find((k) => k.startsWith('value'));
  return key ? p[key] : undefined;
}

// The parts of a $tcm Parameters resource the board shows.
export function parseTcm(encounter: Resource, params: Resource): Discharge {
  const top = (name: string) => (params.parameter ?? []).find((p: any) => p.name === name);
  const requirements = new Map<string, Requirement>();
  for (const p of (params.parameter ?? []).filter((x: any) => x.name === 'requirement')) {
    const part = (name: string) => value((p.part ?? []).find((x: any) => x.name === name));
    requirements.set(part('name'), { status: part('status'), deadline: part('deadline'), metAt: part('metAt') });
  }
  const code = top('code');
  const codePart = (name: string) => value((code?.part ?? []).find((x: any) => x.name === name));
  return {
    encounter,
    discharge: value(top('discharge')),
    eligible: value(top('eligible')) === true,
    complexity: value(top('complexity')),
    requirements,
    code: codePart('code'),
    codeStatus: codePart('status'),
    reachable: codePart('reachable'),
  };
}

// "in 1 d 4 h", "in 35 min", or "overdue" for what is pending, measured from now.
export function clock(deadline: string | undefined, now = Date.now()): string {
  if (!deadline) return '';
  const ms = Date.parse(deadline) - now;
  if (isNaN(ms)) return '';
  if (ms <= 0) return 'overdue';
  const minutes = Math.floor(ms / 60000);
  const days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60);
  if (days > 0) return `in ${days} d ${hours} h`;
  if (hours > 0) return `in ${hours} h ${minutes % 60} min`;
  return `in ${minutes} min`;
}

function classOf(e: Resource): string {
  return e.class?.code ?? '';
}

function RequirementCell({ r }: { r?: Requirement }) {
  if (!r) return <td />;
  if (r.status === 'met') return <td class="tcm met">met<div class="sub">{formatDate(r.metAt)}</div></td>;
  if (r.status === 'missed') return <td class="tcm missed">missed<div class="sub">was due {formatDate(r.deadline)}</div></td>;
  const left = clock(r.deadline);
  const soon = r.deadline ? Date.parse(r.deadline) - Date.now() < 86400000 : false;
  return <td class={`tcm pending${soon ? ' soon' : ''}`}>due {left}<div class="sub">by {formatDate(r.deadline)}</div></td>;
}

// Who is in hospital and the reports of the recent discharges, read anew.
async function loadBoard(): Promise<{ admitted: Resource[]; discharges: Discharge[] }> {
  const since = new Date(Date.now() - 30 * 86400000).toISOString().slice(0, 10);
  const [inside, finished] = await Promise.all([
    search('Encounter?status=in-progress,arrived&_sort=-date&_count=100'),
    search(`Encounter?status=finished&date=ge${since}&_sort=-date&_count=50`),
  ]);
  const recent = finished.filter((e) => TCM_CLASSES.includes(classOf(e)) && e.period?.end &&
                                         Date.parse(e.period.end) >= Date.now() - 30 * 86400000);
  const reports = await Promise.all(recent.map((e) =>
    get<Resource>(`Encounter/${e.id}/$tcm`).then((p) => parseTcm(e, p))
      .catch((err) => ({ encounter: e, eligible: false, requirements: new Map(), error: (err as Error).message } as Discharge))));
  await resolveNames([...inside, ...recent].map((e) => e.subject?.reference));
  return {
    admitted: inside.filter((e) => ['IMP', 'EMER', 'OBSENC', 'ACUTE', 'NONAC', 'SS'].includes(classOf(e))),
    discharges: reports.filter((d) => d.eligible || d.error),
  };
}

function timeOf(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function Transitions() {
  const [admitted, setAdmitted] = useState<Resource[] | null>(null);
  const [discharges, setDischarges] = useState<Discharge[] | null>(null);
  const [error, setError] = useState('');
  const [updated, setUpdated] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [announce, setAnnounce] = useState('');
  const loading = useRef(false);
  const alive = useRef(true);

  // One read at a time; what is shown stays until the new read has all of it. A refresh asked
  // for by the person is announced, the minute's polling is not.
  const refresh = useCallback((asked: boolean) => {
    if (loading.current) return;
    loading.current = true;
    setBusy(true);
    loadBoard().then((board) => {
      if (!alive.current) return;
      setAdmitted(board.admitted);
      setDischarges(board.discharges);
      setError('');
      const now = Date.now();
      setUpdated(now);
      if (asked) setAnnounce(`Updated at ${timeOf(now)}`);
    }).catch((e) => { if (alive.current) setError((e as Error).message); })
      .finally(() => { loading.current = false; if (alive.current) setBusy(false); });
  }, []);

  useEffect(() => {
    alive.current = true;
    refresh(false);
    const timer = setInterval(() => { if (!document.hidden) refresh(false); }, REFRESH_MS);
    return () => { alive.current = false; clearInterval(timer); };
  }, [refresh]);

  const patientLink = (e: Resource) => {
    const ref: string | undefined = e.subject?.reference;
    const id = ref?.replace(/^Patient\//, '');
    return id ? <a {...link(`/patients/${id}`)}>{nameOf(ref, e.subject?.display)}</a> : '';
  };

  return (
    <main id="main" tabIndex={-1}>
      <h1>Transitions</h1>
      <div class="refresh">
        <button type="button" onClick={() => refresh(true)} aria-busy={busy}>{busy && updated ? 'Refreshing…' : 'Refresh'}</button>
        {updated && <span class="updated">Last updated <time dateTime={new Date(updated).toISOString()}>{timeOf(updated)}</time></span>}
        <span class="visually-hidden" role="status" aria-live="polite">{announce}</span>
      </div>
      {error && <p role="alert" class="error">Could not load the transitions: {error}</p>}
      {!error && (!admitted || !discharges) && <p class="status" role="status">Loading…</p>}
      {admitted && discharges && (
        <>
          <section aria-labelledby="t-admitted">
            <h2 id="t-admitted">In hospital now <span class="count">{admitted.length}</span></h2>
            {admitted.length === 0 ? <p class="empty">None of your patients is in hospital.</p> : (
              <table>
                <thead><tr><th scope="col">Patient</th><th scope="col">Class</th><th scope="col">Where</th><th scope="col">Since</th></tr></thead>
                <tbody>
                  {admitted.map((e) => (
                    <tr key={e.id} data-encounter={e.id}>
                      <td>{patientLink(e)}</td>
                      <td>{e.class?.display ?? classOf(e)}</td>
                      <td>{e.location?.[0]?.location?.display ?? e.serviceProvider?.display ?? ''}</td>
                      <td>{formatDate(e.period?.start)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
          <section aria-labelledby="t-discharged">
            <h2 id="t-discharged">Discharged in the last 30 days <span class="count">{discharges.length}</span></h2>
            {discharges.length === 0 ? <p class="empty">No discharge of your patients in transitional care.</p> : (
              <table>
                <thead>
                  <tr><th scope="col">Patient</th><th scope="col">Discharged</th><th scope="col">Complexity</th>
                    {REQUIREMENTS.map(([, title]) => <th scope="col" key={title}>{title}</th>)}
                    <th scope="col">Code</th></tr>
                </thead>
                <tbody>
                  {discharges.map((d) => (
                    <tr key={d.encounter.id} data-encounter={d.encounter.id}>
                      <td>{patientLink(d.encounter)}</td>
                      <td>{formatDate(d.discharge ?? d.encounter.period?.end)}</td>
                      {d.error ? <td colSpan={5} class="error">{d.error}</td> : (
                        <>
                          <td>{d.complexity ?? ''}</td>
                          {REQUIREMENTS.map(([name]) => <RequirementCell key={name} r={d.requirements.get(name)} />)}
                          <td>{d.code}<div class="sub">{d.codeStatus === 'provisional' && d.reachable && d.reachable !== d.code ? `provisional: ${d.reachable} reachable` : d.codeStatus}</div></td>
                        </>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        </>
      )}
    </main>
  );
}
