// A real OpenID provider for Loupe's tests (npm oidc-provider), on loopback, state in memory.
//
//   node provider.mjs CONFIG.json     (tests/servers.py start_oidc_provider writes the file)
//
// CONFIG: {"port": 4000, "clients": [oidc-provider client metadata...],
//          "users": [{"username": "...", "password": "...", "claims": {"sub": "...", ...}}]}
//
// What it does, and nothing more:
// * authorization code flow, PKCE (S256) required for every client, RS256 ID tokens signed
//   with a key pair generated at start-up (published at /jwks);
// * its own sign-in page (user name + password checked against CONFIG.users) that refuses
//   to be framed, like real identity providers; consent is granted without a page;
// * claims: `roles` (scope "roles"), `name` (scope "profile"), `fhirUser` (scope "fhirUser"),
//   also put in the ID token (conformIdTokenClaims off, as Keycloak and Entra do);
// * SMART App Launch (EHR launch): POST /test/launches {"patient", "fhirContext", "aud"}
//   registers a launch and answers {"launch": "<opaque id>"}; an authorization request
//   carrying `launch` (and `aud`, which must equal the launch's) gets, in its token
//   response, `patient` and `fhirContext`; the access token's introspection carries them too
//   (the test's FHIR server introspects with its own client);
// * RP-initiated logout (end_session) and token introspection;
// * resource indicators (RFC 8707): an authorization and token request naming
//   `resource=<absolute URI>` gets a JWT access token for it (RFC 9068, typ at+jwt, RS256,
//   aud = the resource, scope `dicomweb`), carrying the user's `roles` when scope "roles"
//   was granted (Loupe's DICOMweb and FHIR accept these as bearer tokens). Requests without
//   `resource` get opaque access tokens as before.
// It prints "listening <issuer>" once it accepts connections.
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const users = new Map(config.users.map((user) => [user.username, user]));
const accounts = new Map(config.users.map((user) => [user.claims.sub, user]));
const launches = new Map(); // launch id -> {patient, fhirContext, aud}
const codeLaunches = new Map(); // authorization code jti -> launch

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', alg: 'RS256', use: 'sig' };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><main id="test-idp"><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'roles', 'fhirUser', 'launch',
    'patient/ImagingStudy.rs', 'patient/Patient.rs'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name'],
    email: ['email'],
    roles: ['roles'],
    fhirUser: ['fhirUser'],
  },
  conformIdTokenClaims: false,
  extraParams: {
    launch(ctx, value) {
      if (value !== undefined && !launches.has(value)) {
        throw new errors.InvalidRequest('unknown launch');
      }
    },
    aud(ctx, value) {
      const launch = launches.get(ctx.oidc.params.launch);
      if (launch && value !== launch.aud) {
        throw new errors.InvalidRequest('aud does not name the FHIR server of this launch');
      }
    },
  },
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      async getResourceServerInfo(ctx, resourceIndicator) {
        if (!/^https?:\/\/[^/]+\//.test(resourceIndicator)) throw new errors.InvalidTarget();
        return {
          scope: 'dicomweb',
          audience: resourceIndicator,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const user = accounts.get(sub);
    if (!user) return undefined;
    return { accountId: sub, claims: async () => ({ ...user.claims }) };
  },
  async extraTokenClaims(ctx, token) {
    const launch = codeLaunches.get(ctx.oidc.entities.AuthorizationCode?.jti);
    if (launch) return { patient: launch.patient, fhirContext: launch.fhirContext };
    // A JWT access token for a resource server carries the user's roles, as the ID token does.
    const granted = ctx.oidc.entities.AuthorizationCode?.scope?.split(' ') || [];
    if (token.kind === 'AccessToken' && token.resourceServer && granted.includes('roles')) {
      const user = accounts.get(token.accountId);
      return user && user.claims.roles ? { roles: user.claims.roles } : undefined;
    }
    return undefined;
  },
  ttl: { AccessToken: 300, AuthorizationCode: 60, IdToken: 300, Interaction: 600, Session: 3600, Grant: 3600 },
});

// A code issued for an authorization request that carried `launch` remembers its context.
provider.on('authorization_code.saved', (code) => {
  const launch = Provider.ctx?.oidc?.params?.launch;
  if (launch && launches.has(launch)) codeLaunches.set(code.jti, launches.get(launch));
});

async function readForm(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function readJson(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

provider.use(async (ctx, next) => {
  // Like real identity providers: the sign-in page is never shown inside a frame.
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Content-Security-Policy', "frame-ancestors 'none'");

  if (ctx.method === 'POST' && ctx.path === '/test/launches') {
    const body = await readJson(ctx);
    const id = crypto.randomBytes(16).toString('hex');
    launches.set(id, { patient: body.patient, fhirContext: body.fhirContext, aud: body.aud });
    ctx.type = 'json';
    ctx.body = { launch: id };
    return;
  }

  const match = ctx.path.match(/^\/interaction\/([\w-]+)(\/login)?$/);
  if (match) {
    ctx.set('Cache-Control', 'no-store');
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const { prompt, params, session, grantId } = details;
    if (prompt.name === 'consent') {
      // First-party clients: grant what was asked for without a consent page.
      const grant = grantId
        ? await provider.Grant.find(grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const result = { consent: { grantId: await grant.save() } };
      ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true }));
      return;
    }
    let error = '';
    if (ctx.method === 'POST' && match[2]) {
      const form = await readForm(ctx);
      const user = users.get(form.get('username') || '');
      if (user && user.password === form.get('password')) {
        const result = { login: { accountId: user.claims.sub } };
        ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }));
        return;
      }
      error = '<p class="error" role="alert">Unknown user name or wrong password.</p>';
    }
    ctx.type = 'html';
    ctx.body = page('Test IdP sign-in', `${error}
<form method="post" action="/interaction/${escapeHtml(details.uid)}/login">
<label>User name <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form>`);
    return;
  }

  await next();

  // SMART: the token response of a launched authorization carries its context.
  if (ctx.path === '/token' && ctx.status === 200 && ctx.body?.access_token) {
    const launch = codeLaunches.get(ctx.oidc?.entities?.AuthorizationCode?.jti);
    if (launch) {
      ctx.body = { ...ctx.body, patient: launch.patient, fhirContext: launch.fhirContext };
    }
  }
});

provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
