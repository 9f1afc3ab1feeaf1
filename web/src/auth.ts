// Signing in as the built-in SMART app concerto-web: the authorization code flow with PKCE
// (S256) against this server's /oauth2/authorize and /oauth2/token. The tokens stay in memory
// only; what must survive the redirect to the sign-in page (the PKCE verifier, the state and
// where the person was) waits in sessionStorage and is removed as soon as it is used.

export const CLIENT_ID = 'concerto-web';
export const SCOPES = 'openid fhirUser offline_access user/*.rs user/Task.u';
const PENDING = 'concerto-web.pending';

export interface Session {
  accessToken: string;
  refreshToken?: string;
  expiresAt: number; // ms since the epoch
  scope: string;
  fhirUser?: string; // a relative reference: "Practitioner/p1"
}

let session: Session | null = null;
let refreshing: Promise<boolean> | null = null;
let refreshTimer: number | undefined;

export function current(): Session | null {
  return session;
}

export function redirectUri(): string {
  return `${location.origin}/`;
}

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(n: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

// Sends the browser to the sign-in page; comes back to the redirect URI with a code.
export async function signIn(returnTo: string, prompt?: 'login'): Promise<never> {
  const verifier = randomString(48);
  const state = randomString(24);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  const challenge = base64url(new Uint8Array(digest));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, returnTo }));
  const q = new URLSearchParams({
    response_type: 'code', client_id: CLIENT_ID, redirect_uri: redirectUri(), scope: SCOPES,
    state, code_challenge: challenge, code_challenge_method: 'S256',
    aud: `${location.origin}/fhir`,
  });
  if (prompt) q.set('prompt', prompt);
  location.assign(`/oauth2/authorize?${q}`);
  return new Promise<never>(() => {});
}

// The fhirUser claim of an id_token, as a reference relative to the FHIR base.
function fhirUserOf(idToken: string | undefined): string | undefined {
  if (!idToken) return undefined;
  try {
    const part = idToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part));
    const url: string | undefined = claims.fhirUser;
    const m = url?.match(/([A-Za-z]+\/[A-Za-z0-9.-]+)$/);
    return m ? m[1] : undefined;
  } catch {
    return undefined;
  }
}

async function tokenRequest(form: Record<string, string>): Promise<Session> {
  const r = await fetch('/oauth2/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...form, client_id: CLIENT_ID }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok)
    throw new Error(body.error_description || body.error || `the token endpoint answered ${r.status}`);
  const next: Session = {
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    expiresAt: Date.now() + (body.expires_in ?? 3600) * 1000,
    scope: body.scope ?? '',
    fhirUser: fhirUserOf(body.id_token) ?? session?.fhirUser,
  };
  return next;
}

function schedule(): void {
  window.clearTimeout(refreshTimer);
  if (!session?.refreshToken) return;
  // a minute before expiry, or at once for a short-lived token
  const wait = Math.max(0, session.expiresAt - Date.now() - 60000);
  refreshTimer = window.setTimeout(() => { void refresh(); }, wait);
}

// When the page is the redirect back from the sign-in: exchanges the code for tokens and
// returns where the person was; null when the page is not such a redirect.
export async function completeSignIn(): Promise<string | null> {
  const q = new URLSearchParams(location.search);
  if (!q.has('code') && !q.has('error')) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, '', '/');
  if (q.has('error'))
    throw new Error(q.get('error_description') || q.get('error') || 'the sign-in was refused');
  if (!pending || pending.state !== q.get('state'))
    throw new Error('the sign-in answer does not match a sign-in started here; sign in again');
  session = await tokenRequest({
    grant_type: 'authorization_code', code: q.get('code') ?? '', redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  });
  schedule();
  return typeof pending.returnTo === 'string' && pending.returnTo.startsWith('/') ? pending.returnTo : '/';
}

// A new access token from the refresh token (rotated by the server); false when there is
// none or it is refused, and the person must sign in again.
export function refresh(): Promise<boolean> {
  if (!session?.refreshToken) return Promise.resolve(false);
  if (!refreshing) {
    const token = session.refreshToken;
    refreshing = tokenRequest({ grant_type: 'refresh_token', refresh_token: token })
      .then((next) => { session = next; schedule(); return true; })
      .catch(() => false)
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

// Revokes the refresh token (and with it what it gave) and forgets the tokens.
export async function signOut(): Promise<void> {
  const s = session;
  session = null;
  window.clearTimeout(refreshTimer);
  if (!s) return;
  const token = s.refreshToken ?? s.accessToken;
  await fetch('/oauth2/revoke', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, client_id: CLIENT_ID }),
  }).catch(() => undefined);
}
