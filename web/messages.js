// The messaging engine: conversation summaries, history windows, live
// events, gap filling, sends with an outbox, acks, read state, typing,
// presence, recall and groups. It writes into the Store and emits:
//   'convs' (the list changed), 'chat' (conv_id: a history window or its
//   marks changed), 'users', 'conn', 'typing' (conv_id), 'group' (group_id),
//   'toast' (text), 'kicked' (reason).
//
// History windows. Opening a conversation loads its latest page over REST;
// scrolling back loads older pages. A window keeps its messages by seq and
// `hi`, the seq up to which it is complete. Every source (REST page, sync
// page, live msg, ack of our own send) just inserts by seq, so a message seen
// twice is shown once. A live message above hi+1 means a gap: the window
// asks `sync` after hi until it has caught up. A sync page is complete over
// the range it answers, so seqs it skips (outside the caller's membership
// spans) are not waited for.

const SYNC_LIMIT = 100;
const PAGE = 50;
const TYPING_SHOW_MS = 5000;
const TYPING_SEND_EVERY_MS = 2500;

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

function errorText(e) {
  switch (e.code) {
    case 'unavailable': return 'Not connected';
    case 'timeout': return 'No answer from the server';
    case 'rate_limited': return 'Sending too fast';
    case 'permission_denied': return 'Not allowed to send here';
    case 'payload_too_large': return 'Message too large';
    case 'not_found': return 'Recipient not found';
    default: return e.message || e.code || 'Failed';
  }
}

export class Messenger {
  constructor(store, api, socket) {
    this.store = store;
    this.api = api;
    this.socket = socket;
    this.acked = new Map(); // conv_id -> seq acked on this session
    this.ackDirty = new Set();
    this.ackTimer = null;
    this.gapTimers = new Map();
    this.readTimers = new Map();
    this.typingSent = new Map();
    this.presenceSubs = new Set();
    this.userFetches = new Map();
    this.refreshTimer = null;
    this.firstHello = true;
  }

  // --- session lifecycle

  async start() {
    const me = await this.api.me();
    this.store.me = me;
    this.store.users.set(me.user_id, me);
    await this.refreshConversations().catch((e) => this.toast(`Could not load conversations: ${e.message}`));
    this.socket.start();
  }

  stop() {
    this.socket.stop();
    clearTimeout(this.ackTimer);
    clearTimeout(this.refreshTimer);
    for (const t of this.gapTimers.values()) clearTimeout(t);
    for (const t of this.readTimers.values()) clearTimeout(t);
    this.acked.clear();
    this.presenceSubs.clear();
  }

  toast(text) { this.store.emit('toast', text); }

  setConn(state) {
    this.store.conn = state;
    if (state !== 'online') this.presenceSubs.clear();
    this.store.emit('conn', state);
  }

  async onHello(hello) {
    const st = this.store;
    for (const c of hello.conversations || []) {
      const s = st.convs.get(c.conv_id);
      if (s) s.read_seq = Math.max(s.read_seq, c.read_seq);
    }
    // The REST list gives previews and exact unread counts for everything
    // that moved while we were away (and conversations that are new to us).
    if (!this.firstHello || (hello.conversations || []).some((c) => !st.convs.has(c.conv_id) ||
        st.convs.get(c.conv_id).last_seq < c.last_seq)) {
      await this.refreshConversations().catch(() => {});
    }
    this.firstHello = false;
    for (const c of hello.conversations || []) {
      const s = st.convs.get(c.conv_id) || st.upsertConv({ conv_id: c.conv_id });
      if (c.last_seq > s.last_seq) s.last_seq = c.last_seq;
      this.scheduleAck(c.conv_id);
    }
    // Catch every open history window up, then resend what waited offline.
    for (const convId of st.windows.keys()) this.fillGap(convId);
    for (const w of st.windows.values()) {
      for (const e of w.outbox) if (e.status === 'queued') this.transmit(e);
    }
    this.subscribePresence();
    if (st.current) this.markRead(st.current);
    st.emit('convs');
  }

  onEvent(f) {
    const st = this.store;
    switch (f.op) {
      case 'msg': return this.onMsg(f.msg);
      case 'receipt': return this.onReceipt(f);
      case 'typing': {
        if (f.user === st.me?.user_id) return;
        if (!st.typing.has(f.conv_id)) st.typing.set(f.conv_id, new Map());
        st.typing.get(f.conv_id).set(f.user, Date.now() + TYPING_SHOW_MS);
        this.ensureUser(f.user);
        st.emit('typing', f.conv_id);
        setTimeout(() => st.emit('typing', f.conv_id), TYPING_SHOW_MS + 50);
        return;
      }
      case 'presence': {
        st.presence.set(f.user, { online: f.online, last_seen: f.last_seen });
        const u = st.users.get(f.user);
        if (u) { u.online = f.online; if (f.last_seen) u.last_seen = f.last_seen; }
        st.emit('convs');
        st.emit('presence', f.user);
        return;
      }
      case 'recall': return this.applyRecall(f.conv_id, f.seq);
      case 'conv': return this.onConvEvent(f);
      default: return undefined;
    }
  }

  onMsg(m) {
    const st = this.store;
    if (!m || !m.conv_id) return;
    let s = st.convs.get(m.conv_id);
    if (!s) {
      s = st.upsertConv({ conv_id: m.conv_id });
      this.refreshSoon();
    }
    if (m.type !== 'system') this.ensureUser(m.from);
    st.typing.get(m.conv_id)?.delete(m.from);
    const w = st.windows.get(m.conv_id);
    if (w) this.insert(m.conv_id, [m]);
    else this.noteMessage(s, m);
    if (m.type === 'system') this.onSystemMessage(m);
    this.scheduleAck(m.conv_id);
    if (st.current === m.conv_id) this.markRead(m.conv_id);
    st.emit('convs');
    st.emit('typing', m.conv_id);
  }

  onSystemMessage(m) {
    // Membership changes alter member lists and roles: let open panels reload.
    const gid = this.store.groupId(m.conv_id);
    if (gid) this.store.emit('group', gid);
  }

  onReceipt(f) {
    const st = this.store;
    const s = st.convs.get(f.conv_id);
    if (f.user === st.me?.user_id) { // read on another device
      if (!s) return;
      s.read_seq = Math.max(s.read_seq, f.read_seq);
      if (s.read_seq >= s.last_seq) s.unread = 0;
      else this.refreshSoon();
      st.emit('convs');
      return;
    }
    if (!st.readers.has(f.conv_id)) st.readers.set(f.conv_id, new Map());
    const r = st.readers.get(f.conv_id);
    r.set(f.user, Math.max(r.get(f.user) || 0, f.read_seq));
    st.emit('chat', f.conv_id);
  }

  onConvEvent(f) {
    const st = this.store;
    const s = st.convs.get(f.conv_id);
    if (f.event === 'removed' || f.event === 'left') {
      if (s) s.left = f.event;
      if (f.event === 'removed') this.catchUpRest(f.conv_id);
      if (f.event === 'left' && st.current !== f.conv_id) st.convs.delete(f.conv_id);
      st.emit('convs');
      st.emit('chat', f.conv_id);
    } else {
      if (s) s.left = null;
      this.refreshSoon();
      if (st.windows.has(f.conv_id)) this.fillGap(f.conv_id);
    }
    const gid = st.groupId(f.conv_id);
    if (gid) st.emit('group', gid);
  }

  // --- conversation list

  refreshSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refreshConversations().catch(() => {}), 150);
  }

  async refreshConversations() {
    const st = this.store;
    const list = await this.api.conversations(200);
    const seen = new Set();
    for (const c of list) {
      seen.add(c.conv_id);
      const s = st.upsertConv(c);
      if (c.last_seq >= s.last_seq) {
        s.last_seq = c.last_seq;
        s.unread = c.unread;
        if (c.last_message) s.last_message = c.last_message;
      }
      s.read_seq = Math.max(s.read_seq, c.read_seq);
      if (s.read_seq >= s.last_seq) s.unread = 0;
      s.activity = Math.max(s.activity, c.last_message?.ts || c.group?.created_at || 0);
      if (s.left !== 'removed') s.left = null;
    }
    for (const [id, s] of st.convs) {
      if (!seen.has(id) && id !== st.current && !s.left && s.last_seq > 0) st.convs.delete(id);
    }
    this.subscribePresence();
    st.emit('convs');
    if (st.current) this.markRead(st.current);
  }

  // Updates a summary for a message that is newer than what it knew.
  noteMessage(s, m) {
    const st = this.store;
    if (m.seq > s.last_seq) {
      if (m.from !== st.me?.user_id && m.seq > s.read_seq) { // as the server counts `unread`
        s.unread++;
      }
      s.last_seq = m.seq;
      s.last_message = m;
      s.activity = Math.max(s.activity, m.ts || Date.now());
    } else if (s.last_message && s.last_message.seq === m.seq && m.recalled) {
      s.last_message = m;
    }
  }

  subscribePresence() {
    const st = this.store;
    if (!this.socket.ready) return;
    const users = [];
    for (const s of st.convs.values()) {
      const p = s.type === 'private' ? st.peerId(s.conv_id) : null;
      if (p && !this.presenceSubs.has(p)) { this.presenceSubs.add(p); users.push(p); }
    }
    for (let i = 0; i < users.length; i += 500) {
      this.socket.request('presence.sub', { users: users.slice(i, i + 500) }).catch(() => {
        for (const u of users) this.presenceSubs.delete(u);
      });
    }
  }

  async ensureUser(id) {
    const st = this.store;
    if (!id || st.users.has(id)) return st.users.get(id);
    if (!this.userFetches.has(id)) {
      this.userFetches.set(id, this.api.user(id).then((u) => {
        st.users.set(id, u);
        st.emit('users');
        st.emit('convs');
        return u;
      }).catch(() => null).finally(() => this.userFetches.delete(id)));
    }
    return this.userFetches.get(id);
  }

  async setPinned(convId, pinned) {
    const s = this.store.convs.get(convId);
    await this.api.patchConversation(convId, { pinned });
    if (s) s.pinned = pinned;
    this.store.emit('convs');
  }

  // --- history windows

  win(convId) {
    const st = this.store;
    let w = st.windows.get(convId);
    if (!w) {
      w = {
        conv_id: convId, bySeq: new Map(), lo: null, hi: 0, loaded: false, loading: null,
        hasMoreOlder: false, loadingOlder: false, filling: false, outbox: [], error: null,
      };
      st.windows.set(convId, w);
    }
    return w;
  }

  openConv(convId) {
    const st = this.store;
    if (!st.convs.has(convId)) {
      const s = st.upsertConv({ conv_id: convId });
      const peer = st.peerId(convId);
      if (peer) s.peer = st.users.get(peer) || null;
      s.activity = Date.now();
    }
    st.current = convId;
    const w = this.win(convId);
    if (!w.loaded && !w.loading) w.loading = this.loadLatest(convId);
    this.markRead(convId);
    st.emit('convs');
    st.emit('chat', convId);
    return w.loading || Promise.resolve();
  }

  closeConv() {
    this.store.current = null;
    this.store.emit('convs');
  }

  async loadLatest(convId) {
    const st = this.store;
    const w = this.win(convId);
    const s = st.convs.get(convId);
    const knownLast = s ? s.last_seq : 0;
    w.error = null;
    try {
      let r;
      if (knownLast === 0 && convId.startsWith('p:') && !(s && s.last_message)) {
        r = { messages: [], has_more: false }; // a new private chat: nothing to load yet
        try { r = await this.api.messages(convId, { limit: PAGE }); } catch (e) { if (e.status !== 404 && e.status !== 403) throw e; }
      } else {
        r = await this.api.messages(convId, { limit: PAGE });
      }
      const msgs = r.messages || [];
      this.insert(convId, msgs);
      if (msgs.length) {
        w.lo = msgs[0].seq;
        w.hi = Math.max(w.hi, msgs[msgs.length - 1].seq);
      } else {
        w.hi = Math.max(w.hi, knownLast);
        w.lo = w.hi + 1;
      }
      w.hasMoreOlder = !!r.has_more;
      w.loaded = true;
      this.advance(w);
      for (const m of msgs) if (m.type !== 'system') this.ensureUser(m.from);
    } catch (e) {
      w.error = e.status === 403 ? 'You are not a member of this conversation.' : `Could not load history: ${e.message}`;
    } finally {
      w.loading = null;
    }
    if (w.loaded) {
      this.checkGap(convId, 0);
      this.scheduleAck(convId);
      this.markRead(convId);
    }
    st.emit('chat', convId);
    st.emit('convs');
  }

  async loadOlder(convId) {
    const w = this.win(convId);
    if (!w.loaded || !w.hasMoreOlder || w.loadingOlder) return;
    w.loadingOlder = true;
    this.store.emit('chat', convId);
    try {
      const r = await this.api.messages(convId, { before_seq: w.lo, limit: PAGE });
      const msgs = r.messages || [];
      this.insert(convId, msgs);
      if (msgs.length) w.lo = Math.min(w.lo, msgs[0].seq);
      w.hasMoreOlder = !!r.has_more && msgs.length > 0;
      for (const m of msgs) if (m.type !== 'system') this.ensureUser(m.from);
    } catch (e) {
      this.toast(`Could not load older messages: ${e.message}`);
    } finally {
      w.loadingOlder = false;
      this.store.emit('chat', convId);
    }
  }

  // Inserts messages (deduplicated by seq) into the conversation's window.
  insert(convId, msgs) {
    const st = this.store;
    const w = this.win(convId);
    const s = st.convs.get(convId) || st.upsertConv({ conv_id: convId });
    for (const m of msgs) {
      const old = w.bySeq.get(m.seq);
      if (old) {
        if (m.recalled && !old.recalled) w.bySeq.set(m.seq, { ...old, recalled: true, body: m.body || {} });
        continue;
      }
      w.bySeq.set(m.seq, m);
      if (m.from === st.me?.user_id && m.client_msg_id) {
        const i = w.outbox.findIndex((e) => e.client_msg_id === m.client_msg_id);
        if (i >= 0) w.outbox.splice(i, 1);
      }
      this.noteMessage(s, m);
    }
    if (w.loaded) this.advance(w);
    st.emit('chat', convId);
  }

  advance(w) {
    while (w.bySeq.has(w.hi + 1)) w.hi++;
  }

  maxSeq(w) {
    let max = 0;
    for (const k of w.bySeq.keys()) if (k > max) max = k;
    return max;
  }

  // A gap is filled after a short delay: the missing frames are often
  // already on their way (replies overtake pushed events).
  checkGap(convId, delayMs = 300) {
    const w = this.store.windows.get(convId);
    const s = this.store.convs.get(convId);
    if (!w || !w.loaded) return;
    if (Math.max(this.maxSeq(w), s ? s.last_seq : 0) <= w.hi) return;
    if (this.gapTimers.has(convId)) return;
    this.gapTimers.set(convId, setTimeout(() => {
      this.gapTimers.delete(convId);
      this.fillGap(convId);
    }, delayMs));
  }

  async fillGap(convId) {
    const st = this.store;
    const w = st.windows.get(convId);
    if (!w || !w.loaded || w.filling || !this.socket.ready) return;
    const s = st.convs.get(convId);
    if (s?.left) return;
    w.filling = true;
    try {
      for (let pages = 0; pages < 100; pages++) {
        const target = Math.max(this.maxSeq(w), s ? s.last_seq : 0);
        if (w.hi >= target) break;
        const r = await this.socket.request('sync', { conv_id: convId, after_seq: w.hi, limit: SYNC_LIMIT });
        const msgs = r.messages || [];
        this.insert(convId, msgs);
        if (msgs.length) w.hi = Math.max(w.hi, msgs[msgs.length - 1].seq);
        this.advance(w);
        for (const m of msgs) if (m.type !== 'system') this.ensureUser(m.from);
        if (!r.has_more) {
          // Complete up to now: seqs it did not return are not visible to us.
          w.hi = Math.max(w.hi, target);
          this.advance(w);
          break;
        }
        if (!msgs.length) break;
      }
    } catch (e) {
      if (e.code === 'permission_denied' && s) s.left = s.left || 'removed';
    } finally {
      w.filling = false;
    }
    this.scheduleAck(convId);
    if (st.current === convId) this.markRead(convId);
    st.emit('chat', convId);
    st.emit('convs');
    if (this.maxSeq(w) > w.hi) this.checkGap(convId, 1000);
  }

  // After a removal `sync` is refused, but history up to the removal stays
  // readable over REST: fetch what was still on its way.
  async catchUpRest(convId) {
    const w = this.store.windows.get(convId);
    if (!w || !w.loaded) return;
    try {
      for (let pages = 0; pages < 20; pages++) {
        const r = await this.api.messages(convId, { after_seq: w.hi, limit: SYNC_LIMIT });
        const msgs = r.messages || [];
        this.insert(convId, msgs);
        if (msgs.length) w.hi = Math.max(w.hi, msgs[msgs.length - 1].seq);
        if (!r.has_more || !msgs.length) break;
      }
    } catch { /* nothing more to see */ }
    this.store.emit('chat', convId);
  }

  // Messages of a window in display order: stored ones by seq, then the
  // outbox (sending, queued or failed) in the order they were written.
  displayList(convId) {
    const w = this.store.windows.get(convId);
    if (!w) return [];
    const list = [...w.bySeq.values()].sort((a, b) => a.seq - b.seq);
    return list.concat(w.outbox);
  }

  // --- acks and read state

  scheduleAck(convId) {
    this.ackDirty.add(convId);
    if (!this.ackTimer) this.ackTimer = setTimeout(() => this.flushAcks(), 50);
  }

  flushAcks() {
    this.ackTimer = null;
    const st = this.store;
    for (const convId of this.ackDirty) {
      const w = st.windows.get(convId);
      const s = st.convs.get(convId);
      // A window acks what it holds without a gap; a conversation without a
      // window acks its newest seq (its history comes from REST on opening).
      const seq = w && w.loaded ? w.hi : (w ? 0 : (s ? s.last_seq : 0));
      if (seq > (this.acked.get(convId) || 0) && this.socket.notify('ack', { conv_id: convId, seq })) {
        this.acked.set(convId, seq);
      }
    }
    this.ackDirty.clear();
  }

  markRead(convId) {
    const st = this.store;
    if (st.current !== convId || document.visibilityState !== 'visible') return;
    const w = st.windows.get(convId);
    const s = st.convs.get(convId);
    if (!w || !w.loaded || !s || s.left) return;
    const seq = w.hi;
    if (seq <= 0 || (seq <= s.read_seq && s.unread === 0)) return;
    const send = seq > s.read_seq;
    s.read_seq = Math.max(s.read_seq, seq);
    s.unread = 0;
    st.emit('convs');
    if (!send) return;
    clearTimeout(this.readTimers.get(convId));
    this.readTimers.set(convId, setTimeout(() => {
      this.readTimers.delete(convId);
      const target = s.read_seq;
      // Over REST only when the socket could not carry it: a refusal from
      // the server (say, we were just removed from the group) is final.
      this.socket.request('read', { conv_id: convId, seq: target })
        .catch((e) => {
          if (e?.code === 'unavailable' || e?.code === 'timeout') {
            this.api.read(convId, target).catch(() => {});
          }
        });
    }, 150));
  }

  // The mark of one of our own messages: sending, queued, failed, sent,
  // delivered or read. Read comes from receipts (the other members' read
  // cursors). The protocol has no delivery receipts: a private message counts
  // as delivered once the peer is online (their sessions get it live, or
  // sync it in their hello), which is what the presence feed tells us.
  markOf(convId, m) {
    if (m.status) return { status: m.status };
    const st = this.store;
    const readers = st.readers.get(convId);
    if (convId.startsWith('p:')) {
      const peer = st.peerId(convId);
      if (readers && (readers.get(peer) || 0) >= m.seq) return { status: 'read' };
      if (m._delivered || st.isOnline(peer)) {
        m._delivered = true;
        return { status: 'delivered' };
      }
      return { status: 'sent' };
    }
    let n = 0;
    if (readers) for (const seq of readers.values()) if (seq >= m.seq) n++;
    return n ? { status: 'read', count: n } : { status: 'sent' };
  }

  // --- sending

  send(convId, text) {
    const st = this.store;
    const s = st.convs.get(convId);
    const peer = st.peerId(convId);
    const to = peer ? { user: peer } : { group: st.groupId(convId) };
    const entry = {
      client_msg_id: newId(), conv_id: convId, to, type: 'text', body: { text },
      from: st.me.user_id, ts: Date.now(), status: 'sending', error: null,
    };
    this.win(convId).outbox.push(entry);
    if (s) s.activity = Date.now();
    st.emit('chat', convId);
    st.emit('convs');
    this.transmit(entry);
    return entry;
  }

  retry(convId, clientMsgId) {
    const w = this.store.windows.get(convId);
    const e = w?.outbox.find((x) => x.client_msg_id === clientMsgId);
    if (e) this.transmit(e);
  }

  discard(convId, clientMsgId) {
    const w = this.store.windows.get(convId);
    if (!w) return;
    w.outbox = w.outbox.filter((x) => x.client_msg_id !== clientMsgId);
    this.store.emit('chat', convId);
  }

  async transmit(e) {
    const st = this.store;
    e.status = 'sending';
    e.error = null;
    st.emit('chat', e.conv_id);
    if (!this.socket.ready) {
      e.status = 'queued';
      st.emit('chat', e.conv_id);
      return;
    }
    try {
      const r = await this.socket.request('send', {
        to: e.to, client_msg_id: e.client_msg_id, type: e.type, body: e.body,
      }, 20_000);
      const m = {
        msg_id: r.msg_id, conv_id: r.conv_id || e.conv_id, seq: r.seq, ts: r.ts, from: e.from,
        to: e.to, type: e.type, body: e.body, client_msg_id: e.client_msg_id,
      };
      const peer = st.peerId(m.conv_id);
      if (peer && st.isOnline(peer)) m._delivered = true;
      const w = this.win(m.conv_id);
      w.outbox = w.outbox.filter((x) => x.client_msg_id !== e.client_msg_id);
      this.insert(m.conv_id, [m]);
      this.checkGap(m.conv_id);
      this.scheduleAck(m.conv_id);
      if (st.current === m.conv_id) this.markRead(m.conv_id);
      st.emit('convs');
    } catch (err) {
      if (!this.win(e.conv_id).outbox.includes(e)) return; // arrived by sync meanwhile
      if (err.code === 'unavailable') {
        e.status = 'queued'; // resent with the same client_msg_id on reconnect
      } else {
        e.status = 'failed';
        e.error = errorText(err);
      }
      st.emit('chat', e.conv_id);
    }
  }

  sendTyping(convId) {
    const now = Date.now();
    if (now - (this.typingSent.get(convId) || 0) < TYPING_SEND_EVERY_MS) return;
    if (this.socket.notify('typing', { conv_id: convId })) this.typingSent.set(convId, now);
  }

  // --- recall

  async recall(convId, m) {
    try {
      await this.api.recall(m.msg_id);
      this.applyRecall(convId, m.seq);
    } catch (e) {
      this.toast(e.code === 'permission_denied' ? 'This message can no longer be recalled.' : `Recall failed: ${e.message}`);
    }
  }

  applyRecall(convId, seq) {
    const st = this.store;
    const w = st.windows.get(convId);
    const old = w?.bySeq.get(seq);
    if (old) w.bySeq.set(seq, { ...old, recalled: true, body: {} });
    const s = st.convs.get(convId);
    if (s?.last_message?.seq === seq) s.last_message = { ...s.last_message, recalled: true, body: {} };
    st.emit('chat', convId);
    st.emit('convs');
  }

  // --- groups

  async createGroup(name, memberIds) {
    const r = await this.api.createGroup(name, memberIds);
    await this.refreshConversations().catch(() => {});
    return r;
  }

  async loadGroup(groupId) {
    const g = await this.api.group(groupId);
    this.store.groups.set(groupId, g);
    return g;
  }

  async loadMembers(groupId) {
    const out = [];
    let after;
    for (let i = 0; i < 10; i++) {
      const r = await this.api.groupMembers(groupId, after, 200);
      for (const m of r.members || []) {
        out.push(m);
        if (m.user) this.store.users.set(m.user.user_id, { ...this.store.users.get(m.user.user_id), ...m.user });
      }
      if (!r.has_more || !r.members?.length) break;
      after = r.members[r.members.length - 1].user.user_id;
    }
    return out;
  }

  async leaveGroup(groupId) {
    const st = this.store;
    await this.api.removeMember(groupId, st.me.user_id);
    const convId = `g:${groupId}`;
    st.convs.delete(convId);
    st.windows.delete(convId);
    if (st.current === convId) st.current = null;
    st.emit('convs');
  }
}
