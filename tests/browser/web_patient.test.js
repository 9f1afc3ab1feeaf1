// The patient overview of the coordinators' web app, in headless Chromium, on a patient whose
// record holds one of everything: demographics, care team, a care plan with goals and
// activities, problems with ICD-10-CM codes, medications, an allergy, and a timeline of
// encounters (an inpatient stay with its discharge), tasks, a referral, an appointment,
// messages and a document, read a page at a time and filtered by kind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cleanup, cli, launchBrowser, screenshot, startConcerto, tempDir, writeFileSync } from './harness.js';
import { signInAs } from './signin.js';

const PASSWORD = 'copper-lantern-meadow-58';
const SNOMED = 'http://snomed.info/sct';
const ICD = 'http://hl7.org/fhir/sid/icd-10-cm';
const ACT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const EVE = { reference: 'Patient/eve' };
const clinical = (code) => ({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code }] });
const allergyClinical = (code) => ({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code }] });

// 22 old reminders: more than a page of the timeline on their own
const reminders = Array.from({ length: 22 }, (_, i) => ({
  resourceType: 'Communication', id: `rem-${i + 1}`, status: 'completed', subject: EVE,
  sent: `2025-06-${String(i + 1).padStart(2, '0')}T12:00:00Z`, payload: [{ contentString: `Reminder ${i + 1}` }],
}));

const FIXTURES = [
  { resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Coordinator', given: ['Casey'] }] },
  { resourceType: 'Practitioner', id: 'p2', name: [{ family: 'Nurse', given: ['Dana'] }] },
  { resourceType: 'Location', id: 'ward-4b', status: 'active', name: 'Ward 4B' },
  { resourceType: 'Location', id: 'clinic', status: 'active', name: 'Harbour Clinic' },
  { resourceType: 'Medication', id: 'metformin', code: { text: 'Metformin 500 MG Oral Tablet' } },
  { resourceType: 'Patient', id: 'eve', name: [{ family: 'Everly', given: ['Eve'] }], birthDate: '1948-09-12',
    gender: 'female',
    identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR', display: 'MRN' }] },
                   system: 'urn:example:mrn', value: 'MRN-2001' }],
    address: [{ line: ['12 Harbour Road'], city: 'Portland', state: 'ME', postalCode: '04101' }],
    telecom: [{ system: 'phone', value: '207-555-0142', use: 'home' }, { system: 'email', value: 'eve@example.org' }],
    communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'es', display: 'Spanish' }] }, preferred: true }] },
  { resourceType: 'CareTeam', id: 'ct-eve', status: 'active', subject: EVE, participant: [
    { role: [{ text: 'Nurse' }], member: { reference: 'Practitioner/p2' } },
    { role: [{ coding: [{ system: SNOMED, code: '768820003', display: 'Care coordinator' }] }],
      member: { reference: 'Practitioner/p1' }, period: { start: '2020-01-01' } },
  ] },
  { resourceType: 'Condition', id: 'cond-hf', subject: EVE, clinicalStatus: clinical('active'),
    code: { coding: [{ system: ICD, code: 'I50.22', display: 'Chronic systolic (congestive) heart failure' }] },
    onsetDateTime: '2024-05-01' },
  { resourceType: 'Condition', id: 'cond-dm', subject: EVE, clinicalStatus: clinical('active'),
    code: { coding: [{ system: ICD, code: 'E11.9', display: 'Type 2 diabetes mellitus without complications' }] },
    onsetDateTime: '2019-03-15' },
  { resourceType: 'Condition', id: 'cond-old', subject: EVE, clinicalStatus: clinical('resolved'),
    code: { coding: [{ system: ICD, code: 'J18.9', display: 'Pneumonia, unspecified organism' }] },
    onsetDateTime: '2021-01-04' },
  { resourceType: 'MedicationRequest', id: 'med-furo', status: 'active', intent: 'order', subject: EVE,
    authoredOn: '2026-02-05',
    medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '310429',
                                            display: 'Furosemide 20 MG Oral Tablet' }] },
    dosageInstruction: [{ text: '20 mg by mouth every morning' }] },
  { resourceType: 'MedicationRequest', id: 'med-metf', status: 'active', intent: 'order', subject: EVE,
    authoredOn: '2019-03-20', medicationReference: { reference: 'Medication/metformin' },
    dosageInstruction: [{ text: '500 mg twice daily with meals' }] },
  { resourceType: 'MedicationRequest', id: 'med-stopped', status: 'stopped', intent: 'order', subject: EVE,
    medicationCodeableConcept: { text: 'Lisinopril 10 MG Oral Tablet' } },
  { resourceType: 'AllergyIntolerance', id: 'al-pen', patient: EVE, clinicalStatus: allergyClinical('active'),
    code: { text: 'Penicillin' }, criticality: 'high',
    reaction: [{ manifestation: [{ text: 'Hives' }], severity: 'moderate' }] },
  { resourceType: 'Goal', id: 'goal-weight', lifecycleStatus: 'active', subject: EVE,
    achievementStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/goal-achievement', code: 'in-progress', display: 'In Progress' }] },
    description: { text: 'Keep weight stable' },
    target: [{ measure: { text: 'Body weight' }, detailQuantity: { value: 70, comparator: '<=', unit: 'kg' }, dueDate: '2026-06-30' }] },
  { resourceType: 'Goal', id: 'goal-salt', lifecycleStatus: 'proposed', subject: EVE,
    description: { text: 'Less than 2 g of salt a day' } },
  { resourceType: 'CarePlan', id: 'cp-eve', status: 'active', intent: 'plan', subject: EVE,
    title: 'Heart failure care plan', period: { start: '2026-02-06' },
    goal: [{ reference: 'Goal/goal-weight' }, { reference: 'Goal/goal-salt' }],
    activity: [
      { detail: { kind: 'Task', code: { text: 'Daily weight check' }, status: 'in-progress' } },
      { reference: { reference: 'Task/task-med' } },
      { reference: { reference: 'ServiceRequest/sr-cardio' } },
      { reference: { reference: 'Appointment/appt-cardio' } },
    ] },
  { resourceType: 'CarePlan', id: 'cp-old', status: 'completed', intent: 'plan', subject: EVE, title: 'Pneumonia recovery plan' },
  { resourceType: 'Encounter', id: 'enc-amb', status: 'finished', subject: EVE,
    class: { system: ACT, code: 'AMB', display: 'ambulatory' }, type: [{ text: 'Diabetes review' }],
    period: { start: '2026-01-10T14:00:00Z', end: '2026-01-10T15:00:00Z' },
    location: [{ location: { reference: 'Location/clinic' } }] },
  { resourceType: 'Encounter', id: 'enc-imp', status: 'finished', subject: EVE,
    class: { system: ACT, code: 'IMP', display: 'inpatient encounter' },
    period: { start: '2026-02-01T08:00:00Z', end: '2026-02-05T12:00:00Z' },
    location: [{ location: { reference: 'Location/ward-4b' } }],
    hospitalization: { dischargeDisposition: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/discharge-disposition', code: 'home', display: 'Home' }] } } },
  { resourceType: 'Task', id: 'task-call', status: 'completed', intent: 'order', for: EVE,
    description: 'Call Eve after discharge', authoredOn: '2026-02-06T09:00:00Z', lastModified: '2026-02-07T10:00:00Z' },
  { resourceType: 'Task', id: 'task-med', status: 'requested', intent: 'order', for: EVE,
    description: "Reconcile Eve's medications", authoredOn: '2026-02-06T09:30:00Z', lastModified: '2026-02-06T09:30:00Z' },
  { resourceType: 'Task', id: 'task-leaflet', status: 'requested', intent: 'order', for: EVE,
    description: 'Send Eve the diet leaflet' },
  { resourceType: 'ServiceRequest', id: 'sr-cardio', status: 'active', intent: 'order', subject: EVE,
    code: { text: 'Cardiology consultation' }, authoredOn: '2026-02-06T11:00:00Z' },
  { resourceType: 'Appointment', id: 'appt-cardio', status: 'booked', description: 'Cardiology follow-up',
    start: '2026-03-10T14:00:00Z', end: '2026-03-10T14:30:00Z',
    participant: [{ actor: EVE, status: 'accepted' }] },
  { resourceType: 'Communication', id: 'comm-call', status: 'completed', subject: EVE, sent: '2026-02-07T16:00:00Z',
    medium: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationMode', code: 'PHONE', display: 'telephone' }] }],
    payload: [{ contentString: 'Spoke with Eve after discharge' }] },
  { resourceType: 'Communication', id: 'comm-note', status: 'completed', subject: EVE, sent: '2026-03-01T09:00:00Z',
    category: [{ coding: [{ system: 'http://concerto.dev/fhir/CodeSystem/communication-category', code: 'notification' }] }],
    payload: [{ contentString: 'Engine notification to staff' }] },
  { resourceType: 'DocumentReference', id: 'doc-summary', status: 'current', subject: EVE, date: '2026-02-05T15:00:00Z',
    type: { text: 'Discharge summary' }, content: [{ attachment: { contentType: 'text/plain', title: 'summary.txt' } }] },
  ...reminders,
];

// Newest first, as the timeline must list them: [kind, text].
const NEWEST = [
  ['Task', /Task requested: Send Eve the diet leaflet/], // no dates of its own: when it was written (the import)
  ['Appointment', /Appointment: Cardiology follow-up \(booked\)/],
  ['Message', /telephone: Spoke with Eve after discharge/],
  ['Task', /Task completed: Call Eve after discharge/],
  ['Referral', /Referral: Cardiology consultation \(active\)/],
  ['Task', /Task created: Reconcile Eve's medications/],
  ['Task', /Task created: Call Eve after discharge/],
  ['Document', /Document: Discharge summary/],
  ['Encounter', /^Inpatient stay at Ward 4B; until .*; discharged: Home \(finished\)$/],
  ['Encounter', /Ambulatory visit: Diabetes review at Harbour Clinic/],
];

let dir, concerto, browser, page;

before(async () => {
  dir = tempDir();
  const db = join(dir, 'concerto.db');
  const data = join(dir, 'fixtures.ndjson');
  writeFileSync(data, FIXTURES.map((r) => JSON.stringify(r)).join('\n') + '\n');
  cli(['import', '--db', db, data]);
  cli(['user', 'add', '--db', db, '--username', 'casey', '--role', 'coordinator', '--practitioner', 'p1',
       '--password-stdin'], PASSWORD + '\n');
  concerto = await startConcerto(db);
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${concerto.base}/patients/eve`);
  await signInAs(page, 'casey', PASSWORD);
});

after(async () => {
  await browser?.close();
  if (concerto) {
    const code = await concerto.stop();
    assert.equal(code, 0, `concerto serve exited ${code}: ${concerto.stderr()}`);
  }
  if (dir) cleanup(dir);
});

const section = (id) => page.locator(`section[data-section="${id}"]`);
const timelineRows = () => page.locator('section[data-section="timeline"] tbody tr');

function age(birth, now = new Date()) {
  const [y, m, d] = birth.split('-').map(Number);
  let a = now.getFullYear() - y;
  if (now.getMonth() + 1 < m || (now.getMonth() + 1 === m && now.getDate() < d)) a--;
  return a;
}

test('shows who the patient is, the care team with the primary coordinator marked', async () => {
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.getByRole('heading', { level: 1, name: 'Eve Everly' }).waitFor({ timeout: 20000 });
  const demo = await page.locator('dl[aria-label="Demographics"]').textContent();
  assert.match(demo, new RegExp(`Birth date1948-09-12 \\(age ${age('1948-09-12')}\\)`));
  assert.match(demo, /Sexfemale/);
  assert.match(demo, /IdentifiersMRN MRN-2001/);
  assert.match(demo, /Address12 Harbour Road, Portland, ME 04101/);
  assert.match(demo, /Phone207-555-0142 \(home\)/);
  assert.doesNotMatch(demo, /eve@example.org/);
  assert.match(demo, /LanguageSpanish \(preferred\)/);
  await page.locator('dl[aria-label="Coordination"]', { hasText: /Primary coordinatorCasey Coordinator/ }).waitFor();
  const team = section('care-team');
  await team.locator('li').first().waitFor();
  const members = await team.locator('li').allTextContents();
  assert.deepEqual(members, ['Dana Nurse — Nurse', 'Casey Coordinator — Care coordinator primary coordinator']);
  assert.equal(await team.locator('li[data-primary="true"]').textContent(), members[1]);
  const open = section('open-tasks');
  await open.locator('li').first().waitFor();
  const tasks = (await open.locator('li').allTextContents()).sort();
  assert.deepEqual(tasks, ["Reconcile Eve's medications — requested", 'Send Eve the diet leaflet — requested']);
  assert.match(await page.locator('dl[aria-label="Coordination"]').textContent(), /Open tasks2/);
  assert.deepEqual(errors, []);
});

test('the care plan with its goals and activities', async () => {
  const plans = section('care-plans');
  await plans.locator('article').first().waitFor();
  assert.equal(await plans.locator('article').count(), 1, 'only the active plan');
  const plan = plans.locator('article[data-plan="cp-eve"]');
  assert.equal(await plan.getByRole('heading', { level: 3 }).textContent(), 'Heart failure care plan');
  const goals = await plan.locator('li[data-goal]').allTextContents();
  assert.equal(goals.length, 2);
  assert.match(goals[0], /Keep weight stable — target Body weight <=70 kg by 2026-06-30 \(active, In Progress\)/);
  assert.match(goals[1], /Less than 2 g of salt a day \(proposed\)/);
  const acts = await plan.getByRole('table', { name: 'Activities' }).locator('tbody tr').allTextContents();
  assert.equal(acts.length, 4);
  assert.match(acts[0], /^Daily weight checkTaskin-progress/);
  assert.match(acts[1], /^Reconcile Eve's medicationsTaskrequested/);
  assert.match(acts[2], /^Cardiology consultationServiceRequestactive/);
  assert.match(acts[3], /^Cardiology follow-upAppointmentbooked/);
  // a referenced Task opens on its own screen
  assert.equal(await plan.getByRole('link', { name: "Reconcile Eve's medications" }).getAttribute('href'), '/tasks/task-med');
});

test('problems with ICD-10-CM codes, medications and allergies', async () => {
  const problems = page.getByRole('table', { name: 'Problems' });
  await problems.waitFor();
  const rows = await problems.locator('tbody tr').allTextContents();
  assert.deepEqual(rows, [
    'Chronic systolic (congestive) heart failureI50.222024-05-01',
    'Type 2 diabetes mellitus without complicationsE11.92019-03-15',
  ]);
  const meds = await page.getByRole('table', { name: 'Medications' }).locator('tbody tr').allTextContents();
  assert.equal(meds.length, 2, 'the stopped one is left out');
  assert.ok(meds.some((m) => m.startsWith('Furosemide 20 MG Oral Tablet20 mg by mouth every morning')), meds.join('|'));
  assert.ok(meds.some((m) => m.startsWith('Metformin 500 MG Oral Tablet500 mg twice daily with meals')), meds.join('|'));
  const allergies = await page.getByRole('table', { name: 'Allergies' }).locator('tbody tr').allTextContents();
  assert.deepEqual(allergies, ['PenicillinHives (moderate)high']);
  await screenshot(page, 'web-patient-overview');
});

test('the timeline: newest first, a page at a time, filtered by kind', async () => {
  await timelineRows().first().waitFor();
  await page.locator('section[data-section="timeline"][aria-busy="false"]').waitFor();
  let rows = timelineRows();
  assert.equal(await rows.count(), 20, 'one page');
  for (const [i, [kind, text]] of NEWEST.entries()) {
    assert.equal(await rows.nth(i).locator('td').nth(1).textContent(), kind, `row ${i}`);
    assert.match(await rows.nth(i).locator('td').nth(2).textContent(), text, `row ${i}`);
  }
  // then the reminders, newest first; the engine's notification is not a message
  assert.match(await rows.nth(10).textContent(), /Reminder 22$/);
  assert.match(await rows.nth(19).textContent(), /Reminder 13$/);
  assert.doesNotMatch(await section('timeline').textContent(), /Engine notification/);

  // "Show more" reads the next page of messages only now
  const more = page.waitForRequest((r) => r.url().includes('/fhir/Communication?') && r.url().includes('_page='));
  // from the keyboard: the button keeps the focus while the page loads
  await section('timeline').getByRole('button', { name: 'Show more' }).focus();
  await page.keyboard.press('Enter');
  await more;
  await timelineRows().nth(31).waitFor();
  await page.locator('section[data-section="timeline"][aria-busy="false"]').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'timeline', 'the focus stays in the timeline');
  assert.equal(await section('timeline').getByRole('status').textContent(), '32 shown, all there is');
  rows = timelineRows();
  assert.equal(await rows.count(), 32);
  assert.match(await rows.nth(31).textContent(), /Reminder 1$/);
  await page.locator('section[data-section="timeline"][aria-busy="false"]').waitFor();
  assert.equal(await section('timeline').getByRole('button', { name: 'Show more' }).count(), 0, 'nothing left');

  await page.getByLabel('Show').selectOption('encounter');
  await page.locator('section[data-section="timeline"][aria-busy="false"]').waitFor();
  await page.waitForFunction(() => document.querySelectorAll('section[data-section="timeline"] tbody tr').length === 2);
  rows = timelineRows();
  assert.match(await rows.nth(0).textContent(), /Inpatient stay at Ward 4B/);
  assert.match(await rows.nth(1).textContent(), /Ambulatory visit/);

  await page.getByLabel('Show').selectOption('task');
  await page.waitForFunction(() => [...document.querySelectorAll('section[data-section="timeline"] tbody tr')]
    .every((tr) => tr.getAttribute('data-kind') === 'task'));
  await page.locator('section[data-section="timeline"][aria-busy="false"]').waitFor();
  const tasks = await timelineRows().locator('td:nth-child(3)').allTextContents();
  assert.deepEqual(tasks, ['Task requested: Send Eve the diet leaflet', 'Task completed: Call Eve after discharge', "Task created: Reconcile Eve's medications",
                           'Task created: Call Eve after discharge']);
  await page.getByLabel('Show').selectOption('');
  await page.waitForFunction(() => document.querySelectorAll('section[data-section="timeline"] tbody tr').length === 20);
});

const CONDITIONS = /\/fhir\/Condition\?/;
const ALLERGIES = /\/fhir\/AllergyIntolerance\?/;

test('the demographics come first; a failing section says why and leaves the others', async () => {
  let releaseProblems;
  const problemsHeld = new Promise((r) => { releaseProblems = r; });
  await page.route(CONDITIONS, async (route) => { await problemsHeld; await route.continue(); });
  await page.route(ALLERGIES, (route) => route.fulfill({
    status: 500, contentType: 'application/fhir+json',
    body: JSON.stringify({ resourceType: 'OperationOutcome',
                           issue: [{ severity: 'error', code: 'exception', diagnostics: 'the database is busy, try again' }] }),
  }));
  await page.goto(`${concerto.base}/patients/eve`);
  const started = Date.now();
  await page.getByRole('heading', { level: 1, name: 'Eve Everly' }).waitFor({ timeout: 20000 });
  console.log(`patient shown ${Date.now() - started} ms after navigation (sign-in redirect included)`);
  // the patient shows while the problems are still on their way
  assert.match(await section('problems').textContent(), /Loading the problems…/);
  await section('allergies').getByRole('alert').waitFor();
  assert.equal(await section('allergies').getByRole('alert').textContent(),
               'Could not load the allergies: the database is busy, try again');
  await page.getByRole('table', { name: 'Medications' }).waitFor();
  releaseProblems();
  await page.getByRole('table', { name: 'Problems' }).waitFor();
  await page.unroute(CONDITIONS);
  await page.unroute(ALLERGIES);

  // a tablet in portrait: one column, nothing wider than the screen
  await page.setViewportSize({ width: 768, height: 1024 });
  const reloaded = Date.now();
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Eve Everly' }).waitFor({ timeout: 20000 });
  const first = Date.now() - reloaded;
  await page.getByRole('table', { name: 'Allergies' }).waitFor({ timeout: 20000 });
  await page.locator('section[aria-busy="true"]').first().waitFor({ state: 'detached' });
  await timelineRows().first().waitFor();
  console.log(`overview: patient shown after ${first} ms, every section after ${Date.now() - reloaded} ms`);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 768, `page is ${width} px wide`);
  await screenshot(page, 'web-patient-overview-tablet');
  await page.setViewportSize({ width: 1280, height: 800 });
});

test('the sections are reachable by their headings', async () => {
  const headings = await page.getByRole('heading', { level: 2 }).allTextContents();
  assert.deepEqual(headings, ['Care team', 'Open tasks', 'Care plans', 'Problems', 'Medications', 'Allergies', 'Timeline']);
});
