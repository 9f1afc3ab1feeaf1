// A patient's timeline, newest first: one search per kind, each sorted by its date descending
// and read a page at a time, merged in the browser. "Show more" reads a further page of a kind
// only when the merge needs its next item, so nothing is loaded that is not shown.
import { outcomeText, FhirError, Resource } from './fhir';
import { conceptText, resourceTitle, searchPage } from './record';

export type Kind = 'encounter' | 'task' | 'referral' | 'appointment' | 'message' | 'document';

export const KINDS: { kind: Kind; label: string }[] = [
  { kind: 'encounter', label: 'Encounters' },
  { kind: 'task', label: 'Tasks' },
  { kind: 'referral', label: 'Referrals' },
  { kind: 'appointment', label: 'Appointments' },
  { kind: 'message', label: 'Messages' },
  { kind: 'document', label: 'Documents' },
];

export interface Item {
  key: string;
  date: string;
  kind: Kind;
  text: string;
  href?: string; // a screen of the app
}

// How a search's resources become items, and the search, for one kind. An item's date is the
// value its search sorts by, so that each kind's items come newest first and merge in order.
interface Source {
  kind: Kind;
  path: (patient: string, count: number) => string;
  items: (r: Resource, included: Map<string, Resource>) => Item[];
}

const ENCOUNTER_CLASS: Record<string, string> = {
  IMP: 'Inpatient stay', ACUTE: 'Inpatient stay', NONAC: 'Inpatient stay', EMER: 'Emergency visit',
  OBSENC: 'Observation stay', SS: 'Short stay', AMB: 'Ambulatory visit', HH: 'Home visit',
  VR: 'Virtual visit', FLD: 'Field visit', PRENC: 'Pre-admission',
};

function encounterText(e: Resource, included: Map<string, Resource>): string {
  const cls = ENCOUNTER_CLASS[e.class?.code ?? ''] ?? (e.class?.display || e.class?.code || 'Encounter');
  const type = conceptText(e.type?.[0]);
  const places = (e.location ?? []).map((l: any) =>
    l.location?.display || included.get(l.location?.reference ?? '')?.name || '').filter(Boolean);
  let text = type ? `${cls}: ${type}` : cls;
  if (places.length) text += ` at ${[...new Set(places)].join(', ')}`;
  const parts = [text];
  if (e.period?.end) parts.push(`until ${formatShort(e.period.end)}`);
  const disposition = conceptText(e.hospitalization?.dischargeDisposition);
  if (disposition) parts.push(`discharged: ${disposition}`);
  return `${parts.join('; ')} (${e.status})`;
}

function formatShort(v: string): string {
  const d = new Date(v);
  if (/^\d{4}-\d{2}-\d{2}$/.test(v) || isNaN(d.getTime())) return v;
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function one(kind: Kind, r: Resource, date: string | undefined, text: string, href?: string, suffix = ''): Item[] {
  return date ? [{ key: `${r.resourceType}/${r.id}${suffix}`, date, kind, text, href }] : [];
}

const SOURCES: Source[] = [
  { kind: 'encounter',
    path: (p, n) => `Encounter?patient=${p}&_sort=-date&_count=${n}&_include=Encounter:location`,
    items: (r, inc) => one('encounter', r, r.period?.start, encounterText(r, inc)) },
  // a Task twice: when it was asked for, and its last change of status when that came later
  { kind: 'task',
    path: (p, n) => `Task?patient=${p}&_sort=-authored-on&_count=${n}`,
    items: (r) => one('task', r, r.authoredOn, `Task created: ${resourceTitle(r)}`, `/tasks/${r.id}`, '#authored') },
  { kind: 'task',
    path: (p, n) => `Task?patient=${p}&modified:missing=false&_sort=-modified&_count=${n}`,
    items: (r) => r.lastModified && r.lastModified !== r.authoredOn
      ? one('task', r, r.lastModified, `Task ${r.status}: ${resourceTitle(r)}`, `/tasks/${r.id}`, '#modified') : [] },
  // a Task that says neither: when it was last written
  { kind: 'task',
    path: (p, n) => `Task?patient=${p}&authored-on:missing=true&modified:missing=true&_sort=-_lastUpdated&_count=${n}`,
    items: (r) => one('task', r, r.meta?.lastUpdated, `Task ${r.status}: ${resourceTitle(r)}`, `/tasks/${r.id}`, '#written') },
  { kind: 'referral',
    path: (p, n) => `ServiceRequest?patient=${p}&_sort=-authored&_count=${n}`,
    items: (r) => one('referral', r, r.authoredOn,
                      `Referral: ${resourceTitle(r)}${r.performer?.[0]?.display ? ` to ${r.performer[0].display}` : ''} (${r.status})`) },
  { kind: 'appointment',
    path: (p, n) => `Appointment?patient=${p}&_sort=-date&_count=${n}`,
    items: (r) => one('appointment', r, r.start, `Appointment: ${resourceTitle(r)} (${r.status})`) },
  // the engine's notifications to staff are not messages with the patient
  { kind: 'message',
    path: (p, n) => `Communication?patient=${p}&category:not=notification&_sort=-sent&_count=${n}`,
    items: (r) => one('message', r, r.sent,
                      `${(r.medium ?? []).map(conceptText).filter(Boolean).join(', ') || 'Message'}: ${resourceTitle(r)}`) },
  { kind: 'document',
    path: (p, n) => `DocumentReference?patient=${p}&_sort=-date&_count=${n}`,
    items: (r) => one('document', r, r.date, `Document: ${resourceTitle(r)}`) },
];

interface Stream {
  source: Source;
  buffer: Item[];
  next: string | null; // the next page to read, null when there is none
  error: string;
}

export class Timeline {
  private streams: Stream[];
  readonly errors: { kind: Kind; message: string }[] = [];

  constructor(patient: string, kinds: Kind[], private pageSize = 20) {
    this.streams = SOURCES.filter((s) => kinds.includes(s.kind)).map((source) => ({
      source, buffer: [], next: source.path(`Patient/${patient}`, pageSize), error: '',
    }));
  }

  private async fill(s: Stream): Promise<void> {
    while (s.buffer.length === 0 && s.next) {
      const path = s.next;
      s.next = null;
      try {
        const page = await searchPage(path);
        s.buffer.push(...page.matches.flatMap((r) => s.source.items(r, page.included)));
        s.next = page.next;
      } catch (e) {
        s.error = e instanceof FhirError ? e.message : outcomeText(undefined, String(e));
        this.errors.push({ kind: s.source.kind, message: s.error });
      }
    }
  }

  // The next n items, newest first; fewer when the record has no more.
  async take(n: number = this.pageSize): Promise<Item[]> {
    const out: Item[] = [];
    while (out.length < n) {
      await Promise.all(this.streams.map((s) => this.fill(s)));
      let best: Stream | null = null;
      for (const s of this.streams)
        if (s.buffer.length && (!best || Date.parse(s.buffer[0].date) > Date.parse(best.buffer[0].date))) best = s;
      if (!best) break;
      out.push(best.buffer.shift()!);
    }
    return out;
  }

  // Whether anything is left to show.
  get more(): boolean {
    return this.streams.some((s) => s.buffer.length > 0 || s.next !== null);
  }
}
