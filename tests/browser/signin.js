// Signing a staff member in on Concerto's own pages, as a person does: user name, password,
// and the second factor, enrolled on the first sign-in from the secret the page shows.
import { createHmac } from 'node:crypto';

// RFC 6238 with SHA-1, 30-second steps, 6 digits: what an authenticator app shows.
export function totp(secret) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '').toUpperCase())
    bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1000000).padStart(6, '0');
}

// Signs username in where page is now (a sign-in page of /oauth2/), enrolling in TOTP.
export async function signInAs(page, username, password) {
  await page.waitForURL((u) => u.pathname.startsWith('/oauth2/'), { timeout: 20000 });
  await page.getByLabel(/user ?name/i).fill(username);
  await page.getByLabel(/password/i).fill(password);
  await page.getByRole('button', { name: /sign in/i }).click();
  const secret = (await page.locator('#totp-secret').textContent()).trim();
  await page.getByLabel(/code from your app/i).fill(totp(secret));
  await page.getByRole('button', { name: /confirm/i }).click();
  await page.getByRole('button', { name: /continue/i }).click();
}
