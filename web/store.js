// Client state: plain data plus a change notifier. The messaging logic that
// fills it lives in messages.js; the views in ui/ read it and re-render on
// the topics they subscribe to.

export class Store {
  constructor() {
    this.listeners = new Map(); // topic -> Set(fn)
    this.reset();
  }

  reset() {
    this.me = null; // user object of the logged-in user
    this.conn = 'offline'; // offline | connecting | online
    this.convs = new Map(); // conv_id -> summary (see upsertConv)
    this.windows = new Map(); // conv_id -> loaded history window (see messages.js)
    this.users = new Map(); // user_id -> user object
    this.typing = new Map(); // conv_id -> Map(user_id -> expiry ms)
    this.presence = new Map(); // user_id -> {online, last_seen}
    this.readers = new Map(); // conv_id -> Map(user_id -> read_seq), other members
    this.current = null; // conv_id of the open chat
    this.groups = new Map(); // group_id -> group object (with the caller's role)
  }

  on(topic, fn) {
    if (!this.listeners.has(topic)) this.listeners.set(topic, new Set());
    this.listeners.get(topic).add(fn);
    return () => this.listeners.get(topic)?.delete(fn);
  }

  emit(topic, arg) {
    for (const fn of this.listeners.get(topic) || []) fn(arg);
  }

  // --- conversations
  upsertConv(c) {
    let s = this.convs.get(c.conv_id);
    if (!s) {
      s = {
        conv_id: c.conv_id,
        type: c.conv_id.startsWith('g:') ? 'group' : 'private',
        peer: null, group: null, last_seq: 0, read_seq: 0, unread: 0,
        last_message: null, muted: false, pinned: false, left: null, activity: 0,
      };
      this.convs.set(c.conv_id, s);
    }
    for (const k of ['peer', 'group', 'muted', 'pinned', 'type']) if (c[k] !== undefined) s[k] = c[k];
    if (c.peer) this.users.set(c.peer.user_id, { ...this.users.get(c.peer.user_id), ...c.peer });
    if (c.group) this.groups.set(c.group.group_id, { ...this.groups.get(c.group.group_id), ...c.group });
    return s;
  }

  sortedConvs() {
    return [...this.convs.values()].sort((a, b) =>
      (b.pinned - a.pinned) || (b.activity - a.activity) || (a.conv_id < b.conv_id ? -1 : 1));
  }

  peerId(convId) {
    if (!convId.startsWith('p:')) return null;
    const [, a, b] = convId.split(':');
    return a === this.me?.user_id ? b : a;
  }

  groupId(convId) { return convId.startsWith('g:') ? convId.slice(2) : null; }

  privateConvId(userId) {
    const a = BigInt(this.me.user_id), b = BigInt(userId);
    return a < b ? `p:${a}:${b}` : `p:${b}:${a}`;
  }

  userName(id) {
    if (id === this.me?.user_id) return 'You';
    const u = this.users.get(id);
    return u ? (u.display_name || u.username) : `user ${id}`;
  }

  convTitle(s) {
    if (s.type === 'group') {
      const g = this.groups.get(this.groupId(s.conv_id)) || s.group;
      return g?.name || 'Group';
    }
    const u = this.users.get(this.peerId(s.conv_id)) || s.peer;
    return u ? (u.display_name || u.username) : 'Chat';
  }

  // Presence as last heard; unknown (shown offline) while we are disconnected.
  isOnline(userId) {
    if (this.conn !== 'online') return false;
    const p = this.presence.get(userId);
    if (p) return p.online;
    return !!this.users.get(userId)?.online;
  }

  typingIn(convId) {
    const m = this.typing.get(convId);
    if (!m) return [];
    const now = Date.now();
    return [...m].filter(([, exp]) => exp > now).map(([u]) => u);
  }
}
