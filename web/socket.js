// The WebSocket session (protocol section 3): authenticates with an `auth`
// frame (so a stale token can be refreshed and retried on the same socket),
// matches replies to requests by `rid`, pings to notice dead links, and
// reconnects after a drop with exponential back-off and full jitter.

export class SocketError extends Error {
  constructor(code, message, retryAfterMs) {
    super(message || code);
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

const MIN_DELAY_MS = 400;
const MAX_DELAY_MS = 10_000;
const PING_EVERY_MS = 25_000;
const REQUEST_TIMEOUT_MS = 15_000;

export class Socket {
  // handlers: {onHello(hello), onEvent(frame), onState(state), onKicked(reason)}
  constructor(api, handlers) {
    this.api = api;
    this.h = handlers;
    this.ws = null;
    this.ready = false; // authenticated
    this.stopped = true;
    this.attempt = 0;
    this.timer = null;
    this.pingTimer = null;
    this.rid = 0;
    this.pending = new Map(); // rid -> {resolve, reject, timer}
    this.state = 'offline';
    this.onOnline = () => this.reconnectNow();
    this.onVisible = () => { if (document.visibilityState === 'visible') this.reconnectNow(); };
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    window.addEventListener('online', this.onOnline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.timer);
    if (this.ws) this.drop(1000, 'logout');
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.h.onState?.(s);
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/ws`;
  }

  async connect() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.setState('connecting');
    let token;
    try {
      token = await this.api.accessToken();
    } catch (e) {
      if (e.status === 401) return; // logged out; api.onLoggedOut handles it
      this.scheduleReconnect();
      return;
    }
    if (this.stopped || this.ws) return;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => this.authenticate(ws, token, false);
    ws.onmessage = (e) => this.onFrame(e.data);
    ws.onerror = () => {}; // a close event follows
    ws.onclose = (e) => { if (this.ws === ws) this.closed(e.code, e.reason); };
  }

  async authenticate(ws, token, retried) {
    try {
      const hello = await this.send({ op: 'auth', token }, true);
      if (this.ws !== ws) return;
      this.ready = true;
      this.attempt = 0;
      this.setState('online');
      this.startPings();
      this.h.onHello?.(hello);
    } catch (e) {
      if (this.ws !== ws) return;
      if (e.code === 'unauthenticated' && !retried) {
        try {
          await this.api.refresh();
          return this.authenticate(ws, this.api.tokens.access_token, true);
        } catch { /* fall through */ }
      }
      if (e.code === 'unauthenticated' && !this.api.loggedIn) return this.drop(1000, 'logged out');
      this.drop(4000, 'auth failed');
    }
  }

  // Tears the socket down at once (without waiting for a close handshake
  // from a peer that may be gone) and reconnects unless stopped.
  drop(code, reason) {
    const ws = this.ws;
    if (!ws) return;
    try { ws.close(code >= 4000 || code === 1000 ? code : 1000, reason); } catch { /* already closing */ }
    this.closed(code, reason);
  }

  closed(code, reason) {
    this.ws = null;
    this.ready = false;
    clearInterval(this.pingTimer);
    const err = new SocketError('unavailable', 'connection lost');
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(err); }
    this.pending.clear();
    this.setState('offline');
    if (this.stopped) return;
    if (code === 4003) { // kicked: logged out or replaced
      this.stopped = true;
      this.h.onKicked?.(reason || 'session ended');
      return;
    }
    if (code === 4001) { // token refused: refresh before the next try
      this.api.refresh().catch(() => {});
    }
    this.scheduleReconnect(code === 1012 ? 0 : undefined);
  }

  scheduleReconnect(delayMs) {
    if (this.stopped || this.timer) return;
    if (delayMs === undefined) {
      const cap = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
      delayMs = cap / 2 + Math.random() * cap / 2; // exponential, with jitter
    }
    this.attempt++;
    this.nextAttemptAt = Date.now() + delayMs;
    this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delayMs);
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  startPings() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      const ws = this.ws;
      this.request('ping', {}, 10_000).catch(() => { if (this.ws === ws) this.drop(4000, 'ping timeout'); });
    }, PING_EVERY_MS);
  }

  onFrame(data) {
    let f;
    try { f = JSON.parse(data); } catch { return; }
    if (f.op === 'reply') {
      const p = this.pending.get(f.rid);
      if (!p) {
        if (!f.ok) console.warn('mpim: error without request', f.error);
        return;
      }
      this.pending.delete(f.rid);
      clearTimeout(p.timer);
      if (f.ok) {
        const { op, rid, ok, ...result } = f;
        p.resolve(result);
      } else {
        const e = f.error || {};
        p.reject(new SocketError(e.code || 'internal', e.message, e.retry_after_ms ?? f.retry_after_ms));
      }
      return;
    }
    if (f.op === 'kick') {
      this.stopped = true;
      this.h.onKicked?.(f.reason || 'session ended');
      return;
    }
    this.h.onEvent?.(f);
  }

  send(frame, expectReply, timeoutMs = REQUEST_TIMEOUT_MS) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new SocketError('unavailable', 'offline'));
    if (!expectReply) {
      ws.send(JSON.stringify(frame));
      return Promise.resolve();
    }
    const rid = ++this.rid;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        reject(new SocketError('timeout', 'no answer from the server'));
      }, timeoutMs);
      this.pending.set(rid, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...frame, rid }));
    });
  }

  // An op with a reply; rejects with SocketError when offline, on an error
  // reply, or when no answer came in time.
  request(op, fields = {}, timeoutMs) {
    if (!this.ready) return Promise.reject(new SocketError('unavailable', 'offline'));
    return this.send({ op, ...fields }, true, timeoutMs);
  }

  // An op without a reply (ack, typing); dropped when offline.
  notify(op, fields = {}) {
    if (!this.ready) return false;
    this.send({ op, ...fields }, false);
    return true;
  }
}
