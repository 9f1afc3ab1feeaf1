// What a patient's record shows, in words: searches that keep their included resources and
// next link, and the short texts of codes, dosages, goals, activities and the like.
import { Bundle, get, Resource } from './fhir';

export interface Page {
  matches: Resource[];
  included: Map<string, Resource>; // "Type/id" -> resource, of search mode include
  next: string | null; // a path under /fhir/, as request() takes it
}

// One page of a search: its matches, the resources it included and its next link.
export async function searchPage(path: string): Promise<Page> {
  const b = await get<Bundle>(path);
  const matches: Resource[] = [];
  const included = new Map<string, Resource>();
  for (const e of b.entry ?? []) {
    const r = e.resource;
    const mode = (e as any).search?.mode;
    if (!r || r.resourceType === 'OperationOutcome') continue;
    if (mode === 'include') included.set(`${r.resourceType}/${r.id}`, r);
    else matches.push(r);
  }
  const next = (b.link ?? []).find((l: any) => l.relation === 'next')?.url as string | undefined;
  return { matches, included, next: next ? relative(next) : null };
}

// "Encounter?_page=..." from "http://host/fhir/Encounter?_page=...".
function relative(url: string): string {
  const i = url.indexOf('/fhir/');
  return i >= 0 ? url.slice(i + 6) : url;
}

// The words of a CodeableConcept: its text, else its first coding's display, else its code.
export function conceptText(c: any): string {
  if (!c) return '';
  if (c.text) return c.text;
  const coding = (c.coding ?? []).find((x: any) => x.display) ?? c.coding?.[0];
  return coding?.display || coding?.code || '';
}

export const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';

// The ICD-10-CM code of a CodeableConcept, when it has one.
export function icd10(c: any): string {
  return (c?.coding ?? []).find((x: any) => x.system === ICD10CM)?.code ?? '';
}

// Age in whole years at now, from a birth date (YYYY, YYYY-MM or YYYY-MM-DD).
export function ageOf(birthDate: string | undefined, now: Date = new Date()): number | null {
  const m = birthDate?.match(/^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?/);
  if (!m) return null;
  const y = +m[1], mo = m[2] ? +m[2] : 1, d = m[3] ? +m[3] : 1;
  let age = now.getFullYear() - y;
  if (now.getMonth() + 1 < mo || (now.getMonth() + 1 === mo && now.getDate() < d)) age--;
  return age;
}

export function addressText(a: any): string {
  if (!a) return '';
  if (a.text) return a.text;
  return [...(a.line ?? []), a.city, [a.state, a.postalCode].filter(Boolean).join(' '), a.country]
    .filter(Boolean).join(', ');
}

// A period as "start – end", "since start" or "start".
export function periodText(p: any, format: (v?: string) => string): string {
  if (!p?.start && !p?.end) return '';
  if (p.start && p.end) return `${format(p.start)} – ${format(p.end)}`;
  if (p.start) return `since ${format(p.start)}`;
  return `until ${format(p.end)}`;
}

export function quantityText(q: any): string {
  if (!q || q.value === undefined) return '';
  const unit = q.unit ?? q.code ?? '';
  return `${q.comparator ?? ''}${q.value}${unit ? ' ' + unit : ''}`;
}

// A Goal's target: "HbA1c < 7 %" and its due date.
export function targetText(g: Resource, format: (v?: string) => string): string {
  return (g.target ?? []).map((t: any) => {
    const measure = conceptText(t.measure);
    let value = '';
    if (t.detailQuantity) value = quantityText(t.detailQuantity);
    else if (t.detailRange) value = `${quantityText(t.detailRange.low)}–${quantityText(t.detailRange.high)}`;
    else if (t.detailString !== undefined) value = t.detailString;
    else if (t.detailCodeableConcept) value = conceptText(t.detailCodeableConcept);
    else if (t.detailBoolean !== undefined) value = String(t.detailBoolean);
    else if (t.detailInteger !== undefined) value = String(t.detailInteger);
    const due = t.dueDate ? `by ${format(t.dueDate)}` : '';
    return [measure, value, due].filter(Boolean).join(' ');
  }).filter(Boolean).join('; ');
}

// What a referenced activity or timeline item is about, in a few words.
export function resourceTitle(r: Resource): string {
  switch (r.resourceType) {
    case 'Task':
      return r.description || conceptText(r.code) || `Task ${r.id}`;
    case 'ServiceRequest':
      return conceptText(r.code) || (r.note?.[0]?.text ?? '') || `Referral ${r.id}`;
    case 'Appointment':
      return r.description || conceptText(r.serviceType?.[0]) || conceptText(r.appointmentType) || `Appointment ${r.id}`;
    case 'Communication':
      return (r.payload ?? []).map((p: any) => p.contentString).find(Boolean) || conceptText(r.topic) ||
        conceptText(r.category?.[0]) || `Message ${r.id}`;
    case 'DocumentReference':
      return r.description || conceptText(r.type) || r.content?.[0]?.attachment?.title || `Document ${r.id}`;
    default:
      return `${r.resourceType} ${r.id}`;
  }
}

// The drug of a MedicationRequest, from its code or the Medication it names.
export function drugText(m: Resource, included: Map<string, Resource>): string {
  if (m.medicationCodeableConcept) return conceptText(m.medicationCodeableConcept);
  const ref = m.medicationReference?.reference;
  const med = ref ? included.get(ref) : undefined;
  return conceptText(med?.code) || m.medicationReference?.display || ref || '';
}

export function dosageText(m: Resource): string {
  return (m.dosageInstruction ?? []).map((d: any) => d.text || d.patientInstruction).filter(Boolean).join('; ');
}
