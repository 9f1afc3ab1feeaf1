// Changing a Task as the server's state machine allows (docs/api.md, "Tasks: the state
// machine and version checks"): every change says the version it was decided on (If-Match);
// reaching a status several moves away takes one version per move.
import { FhirError, Resource, request } from './fhir';

const MOVES: Record<string, string[]> = {
  draft: ['requested', 'ready'],
  requested: ['received', 'rejected'],
  received: ['accepted', 'rejected'],
  accepted: ['in-progress'],
  ready: ['in-progress'],
  'in-progress': ['on-hold', 'completed', 'failed'],
  'on-hold': ['in-progress'],
};

// The statuses from `from` to `to` (excluding from), by the fewest moves; null when none.
export function path(from: string, to: string): string[] | null {
  if (from === to) return [];
  const seen = new Map<string, string>([[from, '']]);
  const queue = [from];
  while (queue.length) {
    const s = queue.shift()!;
    for (const next of MOVES[s] ?? []) {
      if (seen.has(next)) continue;
      seen.set(next, s);
      if (next === to) {
        const steps = [to];
        for (let at = s; at !== from; at = seen.get(at)!) steps.unshift(at);
        return steps;
      }
      queue.push(next);
    }
  }
  return null;
}

export const OPEN = ['draft', 'requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold'];

export class ConflictError extends Error {
  mine: Resource; // the version the change was decided on
  theirs: Resource; // the current one
  constructor(mine: Resource, theirs: Resource) {
    super('this task was changed by someone else since you loaded it');
    this.mine = mine;
    this.theirs = theirs;
  }
}

async function put(task: Resource, version: string, seen: Resource): Promise<Resource> {
  try {
    const r = await request<Resource>(`Task/${task.id}`, { method: 'PUT', body: task, ifMatch: version });
    return r.body;
  } catch (e) {
    if (e instanceof FhirError && e.status === 412) {
      const now = await request<Resource>(`Task/${task.id}`);
      throw new ConflictError(seen, now.body);
    }
    throw e;
  }
}

export interface Change {
  status?: string; // the status to reach
  owner?: string | null; // a reference; null: none
  statusReason?: string;
}

// Applies change to task (as read, at its meta.versionId); returns the last version written.
// ConflictError when the first write finds another version current (412).
export async function changeTask(task: Resource, change: Change): Promise<Resource> {
  let version = task.meta?.versionId ?? '';
  let next: Resource = structuredClone(task);
  delete next.meta;
  const steps = change.status ? path(task.status, change.status) : [];
  if (steps === null)
    throw new FhirError(422, `a task that is ${task.status} cannot become ${change.status}`);
  if (change.owner !== undefined) {
    if (change.owner) next.owner = { reference: change.owner };
    else delete next.owner;
  }
  if (change.statusReason) next.statusReason = { text: change.statusReason };
  if (steps.length === 0) {
    return put(next, version, task);
  }
  let first = true;
  for (const status of steps) {
    let written: Resource;
    try {
      written = await put({ ...next, meta: undefined, status }, version, task);
    } catch (e) {
      // After the first move the Task is at a status this change wrote. A version written
      // since that keeps the status and owner as written (the engine marks an overdue Task
      // when it changes) is built on, its own changes kept; any other is a conflict.
      if (first || !(e instanceof ConflictError) || e.theirs.status !== next.status ||
          e.theirs.owner?.reference !== next.owner?.reference)
        throw e;
      written = await put({ ...e.theirs, meta: undefined, status }, e.theirs.meta?.versionId ?? '', task);
    }
    first = false;
    next = written;
    version = written.meta?.versionId ?? version;
  }
  return next;
}

// What differs between two versions of a Task, in words, for the person who must decide again.
// name: a person's name for a reference.
export function differences(a: Resource, b: Resource, name: (ref?: string) => string = (r) => r ?? ''): string[] {
  const out: string[] = [];
  const show = (v: any) => (v === undefined || v === null || v === '' ? 'none' : String(v));
  const fields: [string, (t: Resource) => any][] = [
    ['status', (t) => t.status],
    ['owner', (t) => t.owner?.display ?? (t.owner?.reference ? name(t.owner.reference) : undefined)],
    ['priority', (t) => t.priority],
    ['due', (t) => t.restriction?.period?.end],
    ['description', (t) => t.description],
    ['reason', (t) => t.statusReason?.text],
  ];
  for (const [name, f] of fields) {
    if (show(f(a)) !== show(f(b))) out.push(`${name}: ${show(f(a))} → ${show(f(b))}`);
  }
  return out;
}
