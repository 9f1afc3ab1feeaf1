// The app's shell: sign-in on start, the navigation, and the screens by path.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { completeSignIn, current, signIn, signOut } from './auth';
import { get, humanName, Resource } from './fhir';
import { navigate, usePath } from './router';
import { Worklist } from './worklist';
import { Patients } from './patients';
import { PatientOverview } from './patient';
import { TaskDetail } from './task';
import { Transitions } from './transitions';

function title(path: string): string {
  if (path === '/' || path === '/worklist') return 'My worklist';
  if (path === '/patients') return 'Patients';
  if (path === '/transitions') return 'Transitions';
  if (path.startsWith('/patients/')) return 'Patient';
  if (path.startsWith('/tasks/')) return 'Task';
  return 'Page not found';
}

function Screen({ path }: { path: string }) {
  let m: RegExpMatchArray | null;
  useEffect(() => { document.title = `${title(path)} – Concerto`; }, [path]);
  if (path === '/' || path === '/worklist') return <Worklist />;
  if (path === '/patients') return <Patients />;
  if (path === '/transitions') return <Transitions />;
  if ((m = path.match(/^\/patients\/([A-Za-z0-9.-]{1,64})$/))) return <PatientOverview id={m[1]} />;
  if ((m = path.match(/^\/tasks\/([A-Za-z0-9.-]{1,64})$/))) return <TaskDetail id={m[1]} />;
  return (
    <main id="main" tabIndex={-1}>
      <h1>Page not found</h1>
      <p>There is no page at {path}. <a href="/" onClick={(e) => { e.preventDefault(); navigate('/'); }}>Go to your worklist</a>.</p>
    </main>
  );
}

function NavLink({ href, label, path }: { href: string; label: string; path: string }) {
  const active = href === '/' ? path === '/' || path === '/worklist' || path.startsWith('/tasks/')
                              : path.startsWith(href);
  return (
    <a href={href} aria-current={active ? 'page' : undefined}
       onClick={(e) => { e.preventDefault(); navigate(href); }}>{label}</a>
  );
}

function Shell() {
  const path = usePath();
  const [me, setMe] = useState<string>('');
  useEffect(() => {
    const user = current()?.fhirUser;
    if (!user) return;
    get<Resource>(user).then((r) => setMe(humanName(r))).catch(() => setMe(user));
  }, []);
  async function out() {
    await signOut();
    render(<SignedOut />, document.getElementById('app')!);
  }
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand">Concerto</span>
        <nav aria-label="Main">
          <NavLink href="/" label="My worklist" path={path} />
          <NavLink href="/patients" label="Patients" path={path} />
          <NavLink href="/transitions" label="Transitions" path={path} />
        </nav>
        <span class="me" data-testid="me">{me}</span>
        <button type="button" class="quiet" onClick={out}>Sign out</button>
      </header>
      <Screen path={path} />
    </>
  );
}

function SignedOut() {
  return (
    <main id="main" class="centered">
      <h1>You are signed out</h1>
      <p>Concerto forgot your tokens in this tab and the server revoked them.</p>
      <p><button type="button" onClick={() => signIn('/', 'login')}>Sign in again</button></p>
      <p>On a shared computer, also <a href="/oauth2/logout">end the sign-in session</a>.</p>
    </main>
  );
}

function Failed({ message }: { message: string }) {
  return (
    <main id="main" class="centered">
      <h1>Could not sign in</h1>
      <p role="alert">{message}</p>
      <p><button type="button" onClick={() => signIn('/')}>Try again</button></p>
    </main>
  );
}

async function start() {
  const root = document.getElementById('app')!;
  root.textContent = ''; // the loading message goes; Preact renders into an empty element
  try {
    const back = await completeSignIn();
    if (back === null && !current()) {
      await signIn(location.pathname + location.search);
      return;
    }
    if (back && back !== '/') history.replaceState(null, '', back);
    render(<Shell />, root);
  } catch (e) {
    render(<Failed message={(e as Error).message} />, root);
  }
}

void start();
