// Requests to the FHIR API with the session's bearer token. A 401 gets one refresh of the
// token and a second try; errors become FhirError with the OperationOutcome's words.
import { current, refresh, signIn } from './auth';

export type Resource = { resourceType: string; id?: string; meta?: { versionId?: string; lastUpdated?: string; extension?: any[] };[k: string]: any };
export type Bundle = Resource & { entry?: { fullUrl?: string; resource?: Resource }[]; total?: number };

export class FhirError extends Error {
  status: number;
  outcome?: Resource;
  constructor(status: number, message: string, outcome?: Resource) {
    super(message);
    this.status = status;
    this.outcome = outcome;
  }
}

// The words of an OperationOutcome: its issues' diagnostics or details, one per line.
export function outcomeText(outcome: Resource | undefined, fallback: string): string {
  const issues: any[] = outcome?.issue ?? [];
  const words = issues
    .map((i) => i.diagnostics || i.details?.text || i.code)
    .filter((w) => typeof w === 'string' && w.length > 0);
  return words.length ? words.join('\n') : fallback;
}

export interface Options {
  method?: string;
  body?: unknown;
  ifMatch?: string; // a version id: sent as W/"3"
}

export interface Answer<T> {
  status: number;
  body: T;
  etag: string | null;
}

async function send(path: string, opts: Options): Promise<Response> {
  const s = current();
  const headers: Record<string, string> = { Accept: 'application/fhir+json' };
  if (s) headers.Authorization = `Bearer ${s.accessToken}`;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/fhir+json';
  if (opts.ifMatch) headers['If-Match'] = `W/"${opts.ifMatch}"`;
  return fetch(`/fhir/${path}`, {
    method: opts.method ?? 'GET',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
}

export async function request<T = Resource>(path: string, opts: Options = {}): Promise<Answer<T>> {
  let r: Response;
  try {
    r = await send(path, opts);
    if (r.status === 401 && (await refresh())) r = await send(path, opts);
  } catch {
    throw new FhirError(0, 'could not reach the server: check the network connection and try again');
  }
  if (r.status === 401) {
    await signIn(location.pathname + location.search);
  }
  const text = await r.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!r.ok) {
    const outcome = body?.resourceType === 'OperationOutcome' ? body : undefined;
    throw new FhirError(r.status, outcomeText(outcome, `the server answered ${r.status} ${r.statusText}`), outcome);
  }
  return { status: r.status, body: body as T, etag: r.headers.get('ETag') };
}

export async function get<T = Resource>(path: string): Promise<T> {
  return (await request<T>(path)).body;
}

// The resources of a search's page, of one type.
export async function search(path: string): Promise<Resource[]> {
  const b = await get<Bundle>(path);
  return (b.entry ?? []).map((e) => e.resource).filter((r): r is Resource => !!r);
}

// "Patient/p1" from a reference, or the reference itself.
export function refId(ref: string | undefined, type: string): string | undefined {
  if (!ref) return undefined;
  const m = ref.match(new RegExp(`(?:^|/)${type}/([^/]+)$`));
  return m ? m[1] : undefined;
}

export function humanName(r: Resource | undefined): string {
  const n = r?.name?.[0];
  if (!n) return r?.id ? `${r.resourceType}/${r.id}` : '';
  if (n.text) return n.text;
  return [...(n.given ?? []), n.family].filter(Boolean).join(' ');
}

export function formatDate(value: string | undefined): string {
  if (!value) return '';
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return value;
  const d = new Date(value);
  if (isNaN(d.getTime())) return value;
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
