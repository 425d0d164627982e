// REST client for /api/v1 (protocol section 2). Tokens live in memory only:
// the access token is refreshed shortly before it expires, and once more on a
// 401; refreshes are single-flight, because presenting a refresh token that
// was already rotated away revokes the whole session.

export class ApiError extends Error {
  constructor(status, code, message, retryAfterMs) {
    super(message || code);
    this.status = status; // 0: the request never got an HTTP answer
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

const REFRESH_MARGIN_MS = 30_000;

export class Api {
  constructor(base = '/api/v1') {
    this.base = base;
    this.tokens = null; // {user_id, session_id, access_token, refresh_token, refreshAt}
    this.refreshing = null;
    this.onLoggedOut = () => {};
  }

  get loggedIn() { return this.tokens !== null; }
  get userId() { return this.tokens?.user_id ?? null; }
  get sessionId() { return this.tokens?.session_id ?? null; }

  async raw(method, path, body, token) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(this.base + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, 'unavailable', `network error: ${e.message}`);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { /* not JSON: keep null */ }
    }
    if (!res.ok) {
      const err = (data && data.error) || {};
      throw new ApiError(res.status, err.code || (res.status >= 500 ? 'unavailable' : 'internal'),
        err.message || `HTTP ${res.status}`, data?.retry_after_ms ?? err.retry_after_ms);
    }
    return data;
  }

  setTokens(t) {
    const ttlMs = (t.expires_in ?? 900) * 1000;
    // Refresh 30 s before expiry, or at 80% of the lifetime of short tokens
    // (less a second: `exp` counts whole seconds from a truncated `iat`).
    const refreshAt = Date.now() + ttlMs - Math.min(REFRESH_MARGIN_MS, ttlMs / 5 + 1000);
    this.tokens = { ...this.tokens, ...t, refreshAt };
  }

  // A valid access token, refreshed first when it is about to expire.
  async accessToken() {
    if (!this.tokens) throw new ApiError(401, 'unauthenticated', 'not logged in');
    if (Date.now() > this.tokens.refreshAt) await this.refresh();
    return this.tokens.access_token;
  }

  refresh() {
    if (!this.refreshing) {
      const tokens = this.tokens;
      this.refreshing = (async () => {
        try {
          if (!tokens) throw new ApiError(401, 'unauthenticated', 'not logged in');
          const r = await this.raw('POST', '/auth/refresh', { refresh_token: tokens.refresh_token });
          if (this.tokens === tokens) this.setTokens(r);
        } catch (e) {
          if (e.status === 401 && this.tokens === tokens) this.dropSession('session expired');
          throw e;
        } finally {
          this.refreshing = null;
        }
      })();
    }
    return this.refreshing;
  }

  dropSession(reason) {
    if (!this.tokens) return;
    this.tokens = null;
    this.onLoggedOut(reason);
  }

  // An authenticated call; a 401 refreshes the token once and retries.
  async call(method, path, body) {
    const token = await this.accessToken();
    try {
      return await this.raw(method, path, body, token);
    } catch (e) {
      if (e.status !== 401 || !this.tokens) throw e;
      if (this.tokens.access_token === token) await this.refresh();
      return this.raw(method, path, body, this.tokens.access_token);
    }
  }

  // --- auth
  register(username, password, display_name) {
    return this.raw('POST', '/auth/register', { username, password, display_name: display_name || undefined });
  }
  async login(username, password) {
    const r = await this.raw('POST', '/auth/login', { username, password, device: 'web' });
    this.tokens = null;
    this.setTokens(r);
    return r;
  }
  async logout() {
    try { await this.call('POST', '/auth/logout'); } catch { /* the session ends locally anyway */ }
    this.tokens = null;
  }

  // --- users
  me() { return this.call('GET', '/users/me'); }
  user(id) { return this.call('GET', `/users/${id}`); }
  searchUsers(prefix, limit = 20) {
    return this.call('GET', `/users?prefix=${encodeURIComponent(prefix)}&limit=${limit}`);
  }

  // --- conversations and messages
  conversations(limit = 200) { return this.call('GET', `/conversations?limit=${limit}`); }
  messages(convId, { before_seq, after_seq, limit = 50 } = {}) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (before_seq != null) q.set('before_seq', String(before_seq));
    if (after_seq != null) q.set('after_seq', String(after_seq));
    return this.call('GET', `/conversations/${encodeURIComponent(convId)}/messages?${q}`);
  }
  read(convId, seq) { return this.call('POST', `/conversations/${encodeURIComponent(convId)}/read`, { seq }); }
  patchConversation(convId, patch) {
    return this.call('PATCH', `/conversations/${encodeURIComponent(convId)}`, patch);
  }
  recall(msgId) { return this.call('POST', `/messages/${msgId}/recall`); }

  // --- groups
  createGroup(name, members) { return this.call('POST', '/groups', { name, members }); }
  group(id) { return this.call('GET', `/groups/${id}`); }
  groupMembers(id, after, limit = 200) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (after) q.set('after', after);
    return this.call('GET', `/groups/${id}/members?${q}`);
  }
  addMembers(id, userIds) { return this.call('POST', `/groups/${id}/members`, { user_ids: userIds }); }
  removeMember(id, userId) { return this.call('DELETE', `/groups/${id}/members/${userId}`); }
  setRole(id, userId, role) { return this.call('PUT', `/groups/${id}/members/${userId}/role`, { role }); }
}
