// A real OpenID Connect provider for the single sign-on tests (tests/it/sso.rs): npm's
// certified `oidc-provider`, installed by scripts/test into $HOME/.cache/rollcall-oidc.
//
//   node tests/oidc/provider.mjs          (environment below)
//   ROLLCALL_OIDC_MODULES  the node_modules folder holding oidc-provider and jose
//   ROLLCALL_OIDC_REDIRECT the portal's callback URL (every client's one redirect URI)
//
// Listens on 127.0.0.1 on a free port and prints `READY <issuer>` once serving. Who signs
// in is set by the test beforehand: `GET /test/next?sub=…&email=…&verified=true|false|absent`
// (no login form: the interaction signs that account in at once, consent is pre-granted).
// `verified=absent` leaves `email_verified` out of the ID token, as Microsoft Entra ID does;
// `&edov=true|false` then adds Entra's optional claim `xms_edov` (a boolean: "the email
// domain owner has been verified", sent only when the app registration asks for it).
//
// Clients (secret: `secret-<client id>`). `rollcall` is honest. Three misbehave, each in one
// way, by re-signing the ID token of the token response the provider just made:
//   rollcall-wrong-aud  the token names another audience (signed with the real key);
//   rollcall-expired    the token expired a minute ago (signed with the real key);
//   rollcall-bad-sig    the token is signed with a second key under the real key's id.
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.ROLLCALL_OIDC_MODULES;
const redirect = process.env.ROLLCALL_OIDC_REDIRECT;
if (!modules || !redirect) {
  console.error('ROLLCALL_OIDC_MODULES and ROLLCALL_OIDC_REDIRECT are required');
  process.exit(2);
}
const load = (p) => import(pathToFileURL(path.join(modules, p)).href);
const { default: Provider } = await load('oidc-provider/lib/index.js');
const jose = await load('jose/dist/node/esm/index.js');

const KID = 'rollcall-test-key';
async function signingKey() {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  return privateKey;
}
const realKey = await signingKey();
const otherKey = await signingKey();
const realJwk = { ...(await jose.exportJWK(realKey)), kid: KID, alg: 'RS256', use: 'sig' };

const accounts = new Map();
let next = null;

const clients = ['rollcall', 'rollcall-wrong-aud', 'rollcall-expired', 'rollcall-bad-sig'].map((id) => ({
  client_id: id,
  client_secret: `secret-${id}`,
  redirect_uris: [redirect],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
}));

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [realJwk] },
  cookies: { keys: ['rollcall-oidc-test-cookie-key'] },
  scopes: ['openid', 'email'],
  claims: { openid: ['sub'], email: ['email', 'email_verified', 'xms_edov'] },
  // The email claims go in the ID token itself (the portal reads no userinfo).
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const a = accounts.get(id);
    if (!a) return undefined;
    return {
      accountId: id,
      async claims() {
        const claims = { sub: id, email: a.email };
        if (a.verified !== undefined) claims.email_verified = a.verified;
        if (a.edov !== undefined) claims.xms_edov = a.edov;
        return claims;
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email');
    grant.addOIDCClaims(['email', 'email_verified', 'xms_edov']);
    await grant.save();
    return grant;
  },
});

// The misbehaving clients' ID tokens, re-signed after the provider made them.
provider.use(async (ctx, nextMiddleware) => {
  await nextMiddleware();
  if (ctx.path !== '/token' || !ctx.body || typeof ctx.body.id_token !== 'string') return;
  const claims = jose.decodeJwt(ctx.body.id_token);
  const now = Math.floor(Date.now() / 1000);
  let key = realKey;
  switch (claims.aud) {
    case 'rollcall-wrong-aud':
      claims.aud = 'someone-else';
      break;
    case 'rollcall-expired':
      claims.iat = now - 3660;
      claims.exp = now - 60;
      break;
    case 'rollcall-bad-sig':
      key = otherKey;
      break;
    default:
      return;
  }
  ctx.body = {
    ...ctx.body,
    id_token: await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: KID }).sign(key),
  };
});

const callback = provider.callback();
server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (url.pathname === '/test/next') {
      const sub = url.searchParams.get('sub');
      accounts.set(sub, {
        email: url.searchParams.get('email') || undefined,
        verified: url.searchParams.get('verified') === 'absent' ? undefined : url.searchParams.get('verified') === 'true',
        edov: url.searchParams.has('edov') ? url.searchParams.get('edov') === 'true' : undefined,
      });
      next = sub;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (url.pathname.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        if (!next) throw new Error('no account set with /test/next');
        await provider.interactionFinished(req, res, { login: { accountId: next } }, { mergeWithLastSubmission: false });
      } else {
        const grant = new provider.Grant({ clientId: details.params.client_id, accountId: details.session.accountId });
        grant.addOIDCScope('openid email');
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      }
      return;
    }
    callback(req, res);
  } catch (e) {
    console.error(e);
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(e));
  }
});

console.log(`READY ${issuer}`);
