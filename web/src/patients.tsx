// Patients: a search by name, identifier and birth date, with each patient's risk, primary
// coordinator, open tasks and last contact, found by one search per column for the whole page.
import { useEffect, useState } from 'preact/hooks';
import { formatDate, humanName, Resource, search } from './fhir';
import { nameOf, resolveNames } from './names';
import { link } from './router';
import { OPEN } from './tasks';

const COORDINATOR = '768820003';

export interface Row {
  id: string;
  name: string;
  birthDate: string;
  identifier: string;
  risk: number | null; // 0..1
  riskText: string;
  coordinator: string;
  openTasks: number;
  lastContact: string;
}

const QUALITATIVE: Record<string, number> = { negligible: 0.05, low: 0.25, moderate: 0.5, high: 0.75, certain: 1 };

export function riskOf(r: Resource | undefined): { risk: number | null; text: string } {
  const p = r?.prediction?.[0];
  if (!p) return { risk: null, text: '' };
  if (typeof p.probabilityDecimal === 'number')
    return { risk: p.probabilityDecimal, text: `${Math.round(p.probabilityDecimal * 100)}%` };
  const q = p.qualitativeRisk?.coding?.[0]?.code ?? p.qualitativeRisk?.text;
  if (q) return { risk: QUALITATIVE[q] ?? null, text: q };
  return { risk: null, text: '' };
}

function current(period: any, now: number): boolean {
  const start = period?.start ? Date.parse(period.start) : -Infinity;
  const end = period?.end ? Date.parse(period.end) : Infinity;
  return start <= now && now <= end;
}

// Whether a Communication records a contact with the patient, not one of the engine's
// notifications to staff (docs/coordination.md, "Notifications").
export function isContact(c: Resource): boolean {
  return !(c.category ?? []).some((cc: any) => (cc.coding ?? []).some((x: any) => x.code === 'notification'));
}

// The member of a CareTeam who is its current primary coordinator, as a reference.
export function primaryCoordinator(team: Resource): { reference?: string; display?: string } | undefined {
  const now = Date.now();
  const p = (team.participant ?? []).find((x: any) =>
    (x.role ?? []).some((r: any) => (r.coding ?? []).some((c: any) => c.code === COORDINATOR)) && current(x.period, now));
  return p?.member;
}

// The columns of a page of patients, by a search per column over all of them.
export async function enrich(patients: Resource[]): Promise<Row[]> {
  const refs = patients.map((p) => `Patient/${p.id}`).join(',');
  const empty = Promise.resolve([] as Resource[]);
  const [risks, teams, tasks, contacts] = patients.length ? await Promise.all([
    search(`RiskAssessment?subject=${refs}&_sort=-date&_count=1000`).catch(() => []),
    search(`CareTeam?subject=${refs}&status=active&_count=1000`).catch(() => []),
    search(`Task?patient=${refs}&status=${OPEN.join(',')}&_count=1000`).catch(() => []),
    search(`Communication?subject=${refs}&_sort=-sent&_count=1000`).catch(() => []),
  ]) : await Promise.all([empty, empty, empty, empty]);
  const first = <T,>(m: Map<string, T>, key: string | undefined, v: T) => { if (key && !m.has(key)) m.set(key, v); };
  const riskBy = new Map<string, Resource>();
  for (const r of risks) if (!['entered-in-error', 'cancelled'].includes(r.status)) first(riskBy, r.subject?.reference, r);
  const coordinatorBy = new Map<string, { reference?: string; display?: string }>();
  for (const t of teams) { const c = primaryCoordinator(t); if (c) first(coordinatorBy, t.subject?.reference, c); }
  const openBy = new Map<string, number>();
  for (const t of tasks) { const k = t.for?.reference; if (k) openBy.set(k, (openBy.get(k) ?? 0) + 1); }
  const contactBy = new Map<string, string>();
  for (const c of contacts) if (c.sent && isContact(c)) first(contactBy, c.subject?.reference, c.sent);

  await resolveNames([...coordinatorBy.values()].map((c) => c.reference));

  return patients.map((p) => {
    const key = `Patient/${p.id}`;
    const risk = riskOf(riskBy.get(key));
    const c = coordinatorBy.get(key);
    return {
      id: p.id!,
      name: humanName(p),
      birthDate: p.birthDate ?? '',
      identifier: (p.identifier ?? []).map((i: any) => i.value).filter(Boolean).join(', '),
      risk: risk.risk,
      riskText: risk.text,
      coordinator: c ? nameOf(c.reference, c.display) : '',
      openTasks: openBy.get(key) ?? 0,
      lastContact: contactBy.get(key) ?? '',
    };
  });
}

type Key = 'name' | 'birthDate' | 'risk' | 'coordinator' | 'openTasks' | 'lastContact';
const COLUMNS: [Key, string][] = [['name', 'Name'], ['birthDate', 'Birth date'], ['risk', 'Risk'],
  ['coordinator', 'Primary coordinator'], ['openTasks', 'Open tasks'], ['lastContact', 'Last contact']];

function compare(a: Row, b: Row, key: Key): number {
  const x = a[key], y = b[key];
  // empty values sort last whichever the direction
  if (x === null || x === '') return y === null || y === '' ? 0 : 1;
  if (y === null || y === '') return -1;
  return typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
}

export function Patients() {
  const [name, setName] = useState('');
  const [identifier, setIdentifier] = useState('');
  const [birthDate, setBirthDate] = useState('');
  const [rows, setRows] = useState<Row[] | null>(null);
  const [error, setError] = useState('');
  const [loading, setLoading] = useState(false);
  const [sort, setSort] = useState<{ key: Key; descending: boolean }>({ key: 'name', descending: false });

  async function run(q: URLSearchParams) {
    setLoading(true);
    setError('');
    try {
      q.set('_count', '50');
      if (!q.has('_sort')) q.set('_sort', 'family');
      setRows(await enrich(await search(`Patient?${q}`)));
    } catch (e) {
      setError((e as Error).message);
      setRows(null);
    } finally {
      setLoading(false);
    }
  }

  useEffect(() => { void run(new URLSearchParams()); }, []);

  function submit(e: Event) {
    e.preventDefault();
    const q = new URLSearchParams();
    if (name.trim()) q.set('name', name.trim());
    if (identifier.trim()) q.set('identifier', identifier.trim());
    if (birthDate) q.set('birthdate', birthDate);
    void run(q);
  }

  const sorted = rows ? [...rows].sort((a, b) => {
    const c = compare(a, b, sort.key);
    const bothSet = (a[sort.key] !== null && a[sort.key] !== '') && (b[sort.key] !== null && b[sort.key] !== '');
    return sort.descending && bothSet ? -c : c;
  }) : null;

  return (
    <main id="main" tabIndex={-1}>
      <h1>Patients</h1>
      <form class="filters" role="search" onSubmit={submit}>
        <div>
          <label for="p-name">Name</label>
          <input id="p-name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </div>
        <div>
          <label for="p-identifier">Identifier</label>
          <input id="p-identifier" value={identifier} placeholder="MRN or system|value" onInput={(e) => setIdentifier((e.target as HTMLInputElement).value)} />
        </div>
        <div>
          <label for="p-birthdate">Birth date</label>
          <input id="p-birthdate" type="date" value={birthDate} onInput={(e) => setBirthDate((e.target as HTMLInputElement).value)} />
        </div>
        <button type="submit">Search</button>
      </form>
      {loading && <p class="status" role="status">Searching…</p>}
      {error && <p role="alert" class="error">Could not search: {error}</p>}
      {!loading && sorted && sorted.length === 0 && <p class="empty">No patient you may see matches.</p>}
      {!loading && sorted && sorted.length > 0 && (
        <table class="patients">
          <caption class="visually-hidden">Patients found, sorted by {COLUMNS.find(([k]) => k === sort.key)![1]}</caption>
          <thead>
            <tr>
              {COLUMNS.map(([key, title]) => (
                <th scope="col" key={key} aria-sort={sort.key === key ? (sort.descending ? 'descending' : 'ascending') : 'none'}>
                  <button type="button" class="sort" onClick={() => setSort({ key, descending: sort.key === key ? !sort.descending : key === 'risk' || key === 'openTasks' })}>
                    {title}{sort.key === key ? (sort.descending ? ' ▼' : ' ▲') : ''}
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {sorted.map((r) => (
              <tr key={r.id} data-patient={r.id}>
                <td><a {...link(`/patients/${r.id}`)}>{r.name}</a>{r.identifier && <div class="sub">{r.identifier}</div>}</td>
                <td>{r.birthDate}</td>
                <td>{r.riskText}</td>
                <td>{r.coordinator}</td>
                <td class="num">{r.openTasks}</td>
                <td>{formatDate(r.lastContact)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
