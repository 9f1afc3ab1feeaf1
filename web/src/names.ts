// People's names for references (Patient/x, Practitioner/y), read in one search per type and
// kept for the tab's life: lists show names, not ids.
import { humanName, search } from './fhir';

const known = new Map<string, string>();

// Reads the names of refs not known yet; never fails (an unreadable one keeps its reference).
export async function resolveNames(refs: (string | undefined)[]): Promise<void> {
  const want = new Map<string, Set<string>>();
  for (const ref of refs) {
    const m = ref?.match(/^(Patient|Practitioner)\/([A-Za-z0-9.-]{1,64})$/);
    if (!m || known.has(ref!)) continue;
    if (!want.has(m[1])) want.set(m[1], new Set());
    want.get(m[1])!.add(m[2]);
  }
  await Promise.all([...want].map(([type, ids]) =>
    search(`${type}?_id=${[...ids].join(',')}&_count=${ids.size}`)
      .then((rs) => rs.forEach((r) => known.set(`${type}/${r.id}`, humanName(r))))
      .catch(() => undefined)));
}

// The name of ref when known, else the reference itself.
export function nameOf(ref: string | undefined, display?: string): string {
  if (display) return display;
  if (!ref) return '';
  return known.get(ref) ?? ref;
}
