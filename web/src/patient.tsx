// A patient's overview: who they are first, then each section as its search returns: care
// team, care plans with goals and activities, problems, medications, allergies, open tasks
// and a timeline. A section that fails says why and leaves the others be.
import { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { formatDate, get, humanName, Resource, search } from './fhir';
import { link } from './router';
import { isContact, primaryCoordinator, riskOf } from './patients';
import { OPEN } from './tasks';
import { nameOf, resolveNames } from './names';
import { taskTitle } from './worklist';
import {
  addressText, ageOf, conceptText, dosageText, drugText, icd10, Page, periodText, resourceTitle,
  searchPage, targetText,
} from './record';
import { Item, Kind, KINDS, Timeline } from './timeline';

type Load<T> = { state: 'loading' } | { state: 'error'; message: string } | { state: 'done'; data: T };

// Runs fn once per patient; its answer, or the words of its failure.
function useLoad<T>(fn: () => Promise<T>, id: string): Load<T> {
  const [load, setLoad] = useState<Load<T>>({ state: 'loading' });
  useEffect(() => {
    let live = true;
    setLoad({ state: 'loading' });
    fn().then((data) => live && setLoad({ state: 'done', data }))
      .catch((e) => live && setLoad({ state: 'error', message: (e as Error).message }));
    return () => { live = false; };
  }, [id]);
  return load;
}

function Section<T>({ id, title, noun, load, isEmpty, empty, children }: {
  id: string; title: string; noun: string; load: Load<T>; isEmpty: (d: T) => boolean; empty: string;
  children: (d: T) => ComponentChildren;
}) {
  return (
    <section class="card" aria-labelledby={id} aria-busy={load.state === 'loading'} data-section={id}>
      <h2 id={id}>{title}</h2>
      {load.state === 'loading' ? <p class="status" role="status">Loading {noun}…</p>
        : load.state === 'error' ? <p class="error" role="alert">Could not load {noun}: {load.message}</p>
        : isEmpty(load.data) ? <p class="empty">{empty}</p>
        : children(load.data)}
    </section>
  );
}

const GENDER: Record<string, string> = { male: 'male', female: 'female', other: 'other', unknown: 'unknown' };

function Demographics({ p }: { p: Resource }) {
  const age = ageOf(p.birthDate);
  const phones = (p.telecom ?? []).filter((t: any) => t.system === 'phone' || t.system === 'sms');
  const languages = (p.communication ?? []).map((c: any) => conceptText(c.language) + (c.preferred ? ' (preferred)' : ''));
  return (
    <dl class="facts" aria-label="Demographics">
      <dt>Birth date</dt><dd>{p.birthDate ? `${p.birthDate}${age !== null ? ` (age ${age})` : ''}` : 'unknown'}</dd>
      <dt>Sex</dt><dd>{GENDER[p.gender] ?? 'not recorded'}</dd>
      <dt>Identifiers</dt>
      <dd>{(p.identifier ?? []).map((i: any) => [conceptText(i.type), i.value].filter(Boolean).join(' ')).join(', ') || 'none'}</dd>
      <dt>Address</dt><dd>{(p.address ?? []).map(addressText).filter(Boolean).join('; ') || 'not recorded'}</dd>
      <dt>Phone</dt>
      <dd>{phones.map((t: any) => `${t.value}${t.use ? ` (${t.use})` : ''}`).join(', ') || 'not recorded'}</dd>
      <dt>Language</dt><dd>{languages.join(', ') || 'not recorded'}</dd>
    </dl>
  );
}

interface Summary { risk: string; tasks: Resource[]; lastContact: string }

async function loadSummary(ref: string): Promise<Summary> {
  const [risks, tasks, contacts] = await Promise.all([
    search(`RiskAssessment?subject=${ref}&_sort=-date&_count=5`),
    search(`Task?patient=${ref}&status=${OPEN.join(',')}&_count=100`),
    search(`Communication?subject=${ref}&_sort=-sent&_count=50`),
  ]);
  const latest = risks.find((r) => !['entered-in-error', 'cancelled'].includes(r.status));
  return { risk: riskOf(latest).text, tasks, lastContact: contacts.filter(isContact).find((c) => c.sent)?.sent ?? '' };
}

async function loadTeams(ref: string): Promise<Resource[]> {
  const teams = await search(`CareTeam?patient=${ref}&status=active`);
  await resolveNames(teams.flatMap((t) => (t.participant ?? []).map((x: any) => x.member?.reference)));
  return teams;
}

function roleText(x: any): string {
  return (x.role ?? []).map(conceptText).filter(Boolean).join(', ');
}

function CareTeams({ teams }: { teams: Resource[] }) {
  return (
    <>
      {teams.map((t) => {
        const primary = primaryCoordinator(t);
        return (
          <ul class="plain" key={t.id} aria-label={t.name || 'Care team'}>
            {(t.participant ?? []).map((x: any, i: number) => {
              const isPrimary = !!primary && x.member === primary;
              return (
                <li key={i} data-primary={isPrimary ? 'true' : undefined}>
                  {nameOf(x.member?.reference, x.member?.display)}{roleText(x) ? ` — ${roleText(x)}` : ''}
                  {isPrimary && <> <span class="pill primary">primary coordinator</span></>}
                </li>
              );
            })}
          </ul>
        );
      })}
    </>
  );
}

function goalStatus(g: Resource): string {
  return [g.lifecycleStatus, conceptText(g.achievementStatus)].filter(Boolean).join(', ');
}

function activityRow(a: any, included: Map<string, Resource>, i: number) {
  const ref = a.reference?.reference as string | undefined;
  const r = ref ? included.get(ref) : undefined;
  let what = '', kind = '', status = '', when = '';
  if (a.detail) {
    what = conceptText(a.detail.code) || a.detail.description || 'Activity';
    kind = a.detail.kind ?? 'activity';
    status = a.detail.status ?? '';
    when = a.detail.scheduledPeriod ? periodText(a.detail.scheduledPeriod, formatDate)
      : a.detail.scheduledString ?? formatDate(a.detail.scheduledTiming?.event?.[0]);
  } else if (r) {
    what = resourceTitle(r);
    kind = r.resourceType;
    status = r.status ?? '';
    when = formatDate(r.start ?? r.restriction?.period?.end ?? r.occurrenceDateTime ?? r.authoredOn);
  } else {
    what = a.reference?.display || ref || 'Activity';
    kind = ref?.split('/')[0] ?? '';
    status = 'not readable';
  }
  const href = r?.resourceType === 'Task' ? `/tasks/${r.id}` : undefined;
  return (
    <tr key={i}>
      <td>{href ? <a {...link(href)}>{what}</a> : what}</td><td>{kind}</td><td>{status}</td><td>{when}</td>
    </tr>
  );
}

function CarePlans({ page }: { page: Page }) {
  return (
    <>
      {page.matches.map((cp) => {
        const goals = (cp.goal ?? []).map((g: any) => page.included.get(g.reference) ?? { resourceType: 'Goal', id: g.reference, description: { text: g.display || g.reference } });
        const title = cp.title || conceptText(cp.category?.[0]) || `Care plan ${cp.id}`;
        const hid = `plan-${cp.id}`;
        return (
          <article class="plan" key={cp.id} aria-labelledby={hid} data-plan={cp.id}>
            <h3 id={hid}>{title}</h3>
            <p class="sub">{[cp.status, periodText(cp.period, formatDate)].filter(Boolean).join(', ')}{cp.description ? ` — ${cp.description}` : ''}</p>
            <h4 id={`${hid}-goals`}>Goals</h4>
            {goals.length === 0 ? <p class="empty">No goals.</p> : (
              <ul class="plain" aria-labelledby={`${hid}-goals`}>
                {goals.map((g: Resource, i: number) => (
                  <li key={i} data-goal={g.id}>
                    <strong>{conceptText(g.description)}</strong>
                    {targetText(g, formatDate) ? <> — target {targetText(g, formatDate)}</> : null}
                    {goalStatus(g) ? <span class="sub"> ({goalStatus(g)})</span> : null}
                  </li>
                ))}
              </ul>
            )}
            <h4 id={`${hid}-acts`}>Activities</h4>
            {(cp.activity ?? []).length === 0 ? <p class="empty">No activities.</p> : (
              <table aria-labelledby={`${hid}-acts`} class="compact">
                <thead><tr><th scope="col">Activity</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">When</th></tr></thead>
                <tbody>{cp.activity.map((a: any, i: number) => activityRow(a, page.included, i))}</tbody>
              </table>
            )}
          </article>
        );
      })}
    </>
  );
}

function onsetText(c: Resource): string {
  if (c.onsetDateTime) return formatDate(c.onsetDateTime);
  if (c.onsetPeriod) return periodText(c.onsetPeriod, formatDate);
  if (c.onsetAge) return `at age ${c.onsetAge.value}`;
  return c.onsetString ?? '';
}

function TimelineSection({ id }: { id: string }) {
  const [kind, setKind] = useState<Kind | ''>('');
  const [items, setItems] = useState<Item[]>([]);
  const [state, setState] = useState<'loading' | 'idle'>('loading');
  const [errors, setErrors] = useState<string[]>([]);
  const [more, setMore] = useState(false);
  const timeline = useRef<Timeline | null>(null);
  const moreButton = useRef<HTMLButtonElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  async function show(t: Timeline, reset: boolean) {
    setState('loading');
    const got = await t.take();
    if (timeline.current !== t) return; // the filter changed meanwhile
    setItems((old) => (reset ? got : [...old, ...got]));
    setErrors(t.errors.map((e) => `${KINDS.find((k) => k.kind === e.kind)!.label}: ${e.message}`));
    setMore(t.more);
    setState('idle');
    // the last page read: the button goes, the focus goes to the section instead of the page
    if (!reset && !t.more && document.activeElement === moreButton.current) heading.current?.focus();
  }

  useEffect(() => {
    const t = new Timeline(id, kind ? [kind] : KINDS.map((k) => k.kind));
    timeline.current = t;
    setItems([]);
    void show(t, true);
  }, [id, kind]);

  const label = (k: Kind) => KINDS.find((x) => x.kind === k)!.label.replace(/s$/, '');
  return (
    <section class="card wide" aria-labelledby="timeline" aria-busy={state === 'loading'} data-section="timeline">
      <div class="title-row">
        <h2 id="timeline" tabIndex={-1} ref={heading}>Timeline</h2>
        <div>
          <label for="timeline-kind">Show</label>
          <select id="timeline-kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as Kind | '')}>
            <option value="">Everything</option>
            {KINDS.map((k) => <option key={k.kind} value={k.kind}>{k.label}</option>)}
          </select>
        </div>
      </div>
      {errors.map((e, i) => <p key={i} class="error" role="alert">Could not load {e}</p>)}
      {items.length === 0 && state === 'idle' ? <p class="empty">Nothing recorded{kind ? ` of this kind` : ''}.</p> : null}
      {items.length > 0 && (
        <table aria-labelledby="timeline" class="timeline">
          <thead><tr><th scope="col">Date</th><th scope="col">Kind</th><th scope="col">What</th></tr></thead>
          <tbody>
            {items.map((it) => (
              <tr key={it.key} data-kind={it.kind}>
                <td class="when">{formatDate(it.date)}</td>
                <td>{label(it.kind)}</td>
                <td>{it.href ? <a {...link(it.href)}>{it.text}</a> : it.text}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="status" role="status">{state === 'loading' ? 'Loading the timeline…' : items.length ? `${items.length} shown${more ? '' : ', all there is'}` : ''}</p>
      {(more || (state === 'loading' && items.length > 0)) && (
        // aria-disabled rather than disabled: the button keeps the keyboard's focus while it loads
        <p><button type="button" class="quiet" aria-disabled={state === 'loading'} ref={moreButton}
                   onClick={() => state === 'idle' && timeline.current && void show(timeline.current, false)}>Show more</button></p>
      )}
    </section>
  );
}

export function PatientOverview({ id }: { id: string }) {
  const ref = `Patient/${id}`;
  const patient = useLoad(() => get<Resource>(ref), id);
  const summary = useLoad(() => loadSummary(ref), id);
  const teams = useLoad(() => loadTeams(ref), id);
  const plans = useLoad(() => searchPage(
    `CarePlan?patient=${ref}&status=active&_include=CarePlan:goal&_include=CarePlan:activity-reference&_count=20`), id);
  const problems = useLoad(() => search(
    `Condition?patient=${ref}&clinical-status=active,recurrence,relapse&verification-status:not=entered-in-error,refuted&_sort=-onset-date&_count=200`), id);
  const meds = useLoad(() => searchPage(
    `MedicationRequest?patient=${ref}&status=active&_include=MedicationRequest:medication&_count=200`), id);
  const allergies = useLoad(() => search(
    `AllergyIntolerance?patient=${ref}&clinical-status:not=inactive,resolved&verification-status:not=entered-in-error,refuted&_count=200`), id);

  if (patient.state === 'error')
    return <main id="main" tabIndex={-1}><h1>Patient</h1><p role="alert" class="error">Could not load the patient: {patient.message}</p></main>;
  if (patient.state === 'loading')
    return <main id="main" tabIndex={-1}><h1>Patient</h1><p role="status">Loading…</p></main>;
  const p = patient.data;
  const coordinator = teams.state === 'done' ? teams.data.map(primaryCoordinator).find(Boolean) : undefined;
  const s = summary.state === 'done' ? summary.data : null;
  const pending = summary.state === 'loading' ? 'loading…' : summary.state === 'error' ? 'could not load' : '';
  return (
    <main id="main" tabIndex={-1} class="overview">
      <p class="crumbs"><a {...link('/patients')}>Patients</a> ›</p>
      <h1>{humanName(p)}</h1>
      <div class="top-facts">
        <Demographics p={p} />
        <dl class="facts" aria-label="Coordination">
          <dt>Risk</dt><dd>{s ? s.risk || 'not assessed' : pending}</dd>
          <dt>Primary coordinator</dt>
          <dd>{teams.state === 'loading' ? 'loading…' : coordinator ? nameOf(coordinator.reference, coordinator.display) : 'none'}</dd>
          <dt>Last contact</dt><dd>{s ? formatDate(s.lastContact) || 'none recorded' : pending}</dd>
          <dt>Open tasks</dt><dd>{s ? s.tasks.length : pending}</dd>
        </dl>
      </div>
      <div class="sections">
        <Section id="care-team" title="Care team" noun="the care team" load={teams} isEmpty={(t) => t.length === 0}
                 empty="No active care team.">{(t) => <CareTeams teams={t} />}</Section>
        <Section id="open-tasks" title="Open tasks" noun="the open tasks" load={summary} isEmpty={(d) => d.tasks.length === 0}
                 empty="No open tasks.">{(d) => (
          <ul class="plain">
            {d.tasks.map((t) => (
              <li key={t.id}><a {...link(`/tasks/${t.id}`)}>{taskTitle(t)}</a> — {t.status}{t.restriction?.period?.end ? `, due ${formatDate(t.restriction.period.end)}` : ''}</li>
            ))}
          </ul>
        )}</Section>
        <Section id="care-plans" title="Care plans" noun="the care plans" load={plans} isEmpty={(d) => d.matches.length === 0}
                 empty="No active care plan.">{(d) => <CarePlans page={d} />}</Section>
        <Section id="problems" title="Problems" noun="the problems" load={problems} isEmpty={(d) => d.length === 0}
                 empty="No active problems recorded.">{(d) => (
          <table aria-labelledby="problems" class="compact">
            <thead><tr><th scope="col">Problem</th><th scope="col">ICD-10-CM</th><th scope="col">Onset</th></tr></thead>
            <tbody>{d.map((c) => (
              <tr key={c.id} data-condition={c.id}><td>{conceptText(c.code)}</td><td>{icd10(c.code) || '—'}</td><td class="date">{onsetText(c) || '—'}</td></tr>
            ))}</tbody>
          </table>
        )}</Section>
        <Section id="medications" title="Medications" noun="the medications" load={meds} isEmpty={(d) => d.matches.length === 0}
                 empty="No active medications recorded.">{(d) => (
          <table aria-labelledby="medications" class="compact">
            <thead><tr><th scope="col">Drug</th><th scope="col">Dosage</th><th scope="col">Prescribed</th></tr></thead>
            <tbody>{d.matches.map((m) => (
              <tr key={m.id} data-medication={m.id}><td>{drugText(m, d.included)}</td><td>{dosageText(m) || '—'}</td><td class="date">{formatDate(m.authoredOn) || '—'}</td></tr>
            ))}</tbody>
          </table>
        )}</Section>
        <Section id="allergies" title="Allergies" noun="the allergies" load={allergies} isEmpty={(d) => d.length === 0}
                 empty="No allergies recorded.">{(d) => (
          <table aria-labelledby="allergies" class="compact">
            <thead><tr><th scope="col">Substance</th><th scope="col">Reaction</th><th scope="col">Criticality</th></tr></thead>
            <tbody>{d.map((a) => (
              <tr key={a.id} data-allergy={a.id}>
                <td>{conceptText(a.code)}</td>
                <td>{(a.reaction ?? []).flatMap((x: any) => (x.manifestation ?? []).map(conceptText)
                       .map((w: string) => (x.severity ? `${w} (${x.severity})` : w))).join(', ') || '—'}</td>
                <td>{a.criticality ?? '—'}</td>
              </tr>
            ))}</tbody>
          </table>
        )}</Section>
        <TimelineSection id={id} />
      </div>
    </main>
  );
}
