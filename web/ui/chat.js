// The chat pane: header (title, presence or typing, pin, group info), the
// message list with scroll-back, and the composer.
import { h, clear, avatar, timeOf, dayOf, lastSeenText, scheduler, icon } from './dom.js';
import { systemText, bodyText } from './text.js';

const MARKS = { sending: () => icon('clock'), queued: () => icon('clock'), failed: () => '!', sent: () => '✓', delivered: () => '✓✓', read: () => '✓✓' };
const MARK_TITLES = {
  sending: 'Sending', queued: 'Waiting for the connection', failed: 'Not sent',
  sent: 'Sent', delivered: 'Delivered', read: 'Read',
};
const RECALL_WINDOW_MS = 120_000;

export function mountChat(el, { store, messenger, onBack, onInfo }) {
  const title = h('h2', { class: 'chat-title', id: 'chat-title' });
  const sub = h('div', { class: 'chat-sub', id: 'chat-sub' });
  const back = h('button', { class: 'icon-btn back', id: 'chat-back', 'aria-label': 'Back', onclick: onBack }, icon('back'));
  const pin = h('button', { class: 'icon-btn', id: 'chat-pin', title: 'Pin', 'aria-label': 'Pin conversation' }, icon('pin'));
  const info = h('button', { class: 'icon-btn', id: 'chat-info', title: 'Group info', 'aria-label': 'Group info', onclick: () => onInfo(store.current) }, icon('info'));
  const avWrap = h('span', { class: 'av-wrap' });
  const scroller = h('div', { class: 'messages', id: 'messages', role: 'log', 'aria-live': 'polite' });
  const older = h('button', { class: 'link load-older', id: 'load-older' }, 'Load earlier messages');
  const listEl = h('div', { class: 'msg-list' });
  const notice = h('div', { class: 'chat-notice', id: 'chat-notice', hidden: true });
  const input = h('textarea', {
    id: 'composer-input', rows: 1, placeholder: 'Write a message…', 'aria-label': 'Message', maxlength: 20000,
  });
  const sendBtn = h('button', { class: 'primary send', id: 'composer-send', type: 'submit', 'aria-label': 'Send' }, 'Send');
  const composer = h('form', { class: 'composer', id: 'composer' }, input, sendBtn);
  const placeholder = h('div', { class: 'chat-empty', id: 'chat-placeholder' },
    h('p', {}, 'Pick a conversation, or find someone by username to start one.'));
  const pane = h('div', { class: 'chat-pane', hidden: true },
    h('header', { class: 'chat-head' }, back, avWrap, h('div', { class: 'chat-head-text' }, title, sub), pin, info),
    scroller, notice, composer);
  scroller.append(older, listEl);
  el.replaceChildren(placeholder, pane);

  let shownConv = null;
  const nodes = new Map(); // key -> {el, sig}

  older.addEventListener('click', () => store.current && messenger.loadOlder(store.current));
  scroller.addEventListener('scroll', () => {
    const w = store.current && store.windows.get(store.current);
    if (w && scroller.scrollTop < 60 && w.hasMoreOlder && !w.loadingOlder) messenger.loadOlder(store.current);
  });
  pin.addEventListener('click', async () => {
    const s = store.convs.get(store.current);
    if (!s) return;
    try { await messenger.setPinned(s.conv_id, !s.pinned); } catch (e) { store.emit('toast', `Could not pin: ${e.message}`); }
    render();
  });

  const submit = () => {
    const text = input.value.trim();
    const convId = store.current;
    if (!text || !convId) return;
    input.value = '';
    autosize();
    stickToBottom = true;
    messenger.send(convId, text);
  };
  composer.addEventListener('submit', (e) => { e.preventDefault(); submit(); input.focus(); });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  const autosize = () => {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  };
  input.addEventListener('input', () => {
    autosize();
    if (store.current && input.value.trim()) messenger.sendTyping(store.current);
  });

  let stickToBottom = true;

  function messageKey(m) { return m.status ? `c:${m.client_msg_id}` : `s:${m.seq}`; }

  function messageNode(convId, m, prev) {
    const me = store.me.user_id;
    if (m.type === 'system') {
      return h('div', { class: 'sys', dataset: { seq: m.seq } }, systemText(store, m));
    }
    const mine = m.from === me;
    const isGroup = convId.startsWith('g:');
    const mark = mine ? messenger.markOf(convId, m) : null;
    const text = bodyText(m);
    const content = m.recalled
      ? h('span', { class: 'recalled' }, mine ? 'You recalled this message' : 'This message was recalled')
      : (text !== null ? h('span', { class: 'text' }, text)
        : h('code', { class: 'custom' }, JSON.stringify(m.body)));
    const firstOfRun = !prev || prev.from !== m.from || prev.type === 'system' || (m.ts - prev.ts) > 5 * 60_000;
    const meta = h('span', { class: 'meta' }, h('time', { datetime: new Date(m.ts).toISOString() }, timeOf(m.ts)),
      mark ? h('span', {
        class: `mark ${mark.status}`, dataset: { status: mark.status },
        title: mark.count ? `Read by ${mark.count}` : MARK_TITLES[mark.status],
      }, MARKS[mark.status](), mark.count && isGroup ? h('small', {}, String(mark.count)) : null) : null);
    const actions = [];
    const g = isGroup ? store.groups.get(store.groupId(convId)) : null;
    const canRecall = !m.status && !m.recalled && m.msg_id &&
      ((mine && Date.now() - m.ts < RECALL_WINDOW_MS) || (g && (g.role === 'owner' || g.role === 'admin')));
    if (canRecall) {
      actions.push(h('button', { class: 'msg-action recall', title: 'Recall for everyone', onclick: () => messenger.recall(convId, m) }, 'Recall'));
    }
    let error = null;
    if (lastQueued(convId, m)) {
      error = h('div', { class: 'send-note' }, 'Waiting for the connection…');
    } else if (m.status === 'failed') {
      error = h('div', { class: 'send-error', role: 'alert' }, `Not sent: ${m.error}. `,
        h('button', { class: 'link retry', onclick: () => messenger.retry(convId, m.client_msg_id) }, 'Retry'),
        ' · ',
        h('button', { class: 'link discard', onclick: () => messenger.discard(convId, m.client_msg_id) }, 'Delete'));
    }
    return h('div', {
      class: `msg ${mine ? 'mine' : 'theirs'}${firstOfRun ? ' first' : ''}${m.status ? ` ${m.status}` : ''}`,
      dataset: { seq: m.seq ?? '', cmid: m.client_msg_id || '', from: m.from },
    },
    isGroup && !mine && firstOfRun ? h('div', { class: 'sender' }, store.userName(m.from)) : null,
    h('div', { class: 'bubble' }, content, meta),
    actions.length ? h('div', { class: 'msg-actions' }, actions) : null,
    error);
  }

  function signature(convId, m, prev) {
    const mark = m.from === store.me.user_id && m.type !== 'system' ? messenger.markOf(convId, m) : null;
    const firstOfRun = !prev || prev.from !== m.from || prev.type === 'system';
    return [m.status, m.error, m.recalled, lastQueued(convId, m), mark?.status, mark?.count, firstOfRun,
      m.type === 'system' || convId.startsWith('g:') ? store.userName(m.from) + systemKey(m) : '',
      m.from === store.me.user_id && Date.now() - m.ts < RECALL_WINDOW_MS].join('|');
  }
  // The note under waiting messages goes under the last of them only.
  function lastQueued(convId, m) {
    if (m.status !== 'queued') return false;
    const queued = store.windows.get(convId)?.outbox.filter((x) => x.status === 'queued') || [];
    return queued[queued.length - 1] === m;
  }
  function systemKey(m) { return m.type === 'system' ? systemText(store, m) : ''; }

  function renderHeader(s) {
    const convId = s.conv_id;
    title.textContent = store.convTitle(s);
    const typing = store.typingIn(convId);
    const peer = store.peerId(convId);
    clear(avWrap);
    if (peer) {
      const u = store.users.get(peer);
      avWrap.append(avatar(store.convTitle(s), peer, u?.avatar_url),
        h('span', { class: `presence ${store.isOnline(peer) ? 'on' : 'off'}` }));
    } else {
      avWrap.append(avatar(store.convTitle(s), convId, null, 'group'));
    }
    if (typing.length) {
      sub.textContent = convId.startsWith('g:')
        ? `${typing.map((u) => store.userName(u)).join(', ')} ${typing.length > 1 ? 'are' : 'is'} typing…`
        : 'typing…';
      sub.className = 'chat-sub typing';
      sub.id = 'chat-sub';
    } else if (peer) {
      const u = store.users.get(peer);
      const p = store.presence.get(peer);
      sub.textContent = store.isOnline(peer) ? 'online' : lastSeenText(p?.last_seen || u?.last_seen);
      sub.className = 'chat-sub';
    } else {
      const g = store.groups.get(store.groupId(convId)) || s.group;
      sub.textContent = g ? `${g.member_count} member${g.member_count === 1 ? '' : 's'}` : 'group';
      sub.className = 'chat-sub';
    }
    pin.classList.toggle('on', !!s.pinned);
    pin.title = s.pinned ? 'Unpin' : 'Pin';
    info.hidden = !convId.startsWith('g:');
    info.disabled = !!s.left;
  }

  function renderMessages(convId) {
    const w = store.windows.get(convId);
    const s = store.convs.get(convId);
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
    const firstKeyBefore = listEl.firstElementChild?.dataset.key;
    const heightBefore = scroller.scrollHeight;
    const topBefore = scroller.scrollTop;

    const list = messenger.displayList(convId);
    const children = [];
    let prev = null;
    let lastDay = null;
    for (const m of list) {
      const day = dayOf(m.ts || Date.now());
      if (day !== lastDay) {
        const key = `d:${day}`;
        let n = nodes.get(key);
        if (!n) { n = { el: h('div', { class: 'day', dataset: { key } }, h('span', {}, day)), sig: '' }; nodes.set(key, n); }
        children.push(n.el);
        lastDay = day;
      }
      const key = messageKey(m);
      const sig = signature(convId, m, prev);
      let n = nodes.get(key);
      if (!n || n.sig !== sig) {
        const el2 = messageNode(convId, m, prev);
        el2.dataset.key = key;
        n = { el: el2, sig };
        nodes.set(key, n);
      }
      children.push(n.el);
      prev = m;
    }
    // Reorder only what moved; keep the rest in place.
    let cursor = listEl.firstChild;
    for (const c of children) {
      if (c === cursor) { cursor = cursor.nextSibling; continue; }
      listEl.insertBefore(c, cursor);
    }
    while (cursor) { const next = cursor.nextSibling; cursor.remove(); cursor = next; }
    const keep = new Set(children.map((c) => c.dataset.key));
    for (const k of nodes.keys()) if (!keep.has(k)) nodes.delete(k);

    older.hidden = !(w && w.loaded && w.hasMoreOlder);
    older.textContent = w?.loadingOlder ? 'Loading…' : 'Load earlier messages';
    if (w && !w.loaded) {
      notice.hidden = false;
      notice.textContent = w.error || 'Loading…';
    } else if (s?.left) {
      notice.hidden = false;
      notice.textContent = s.left === 'removed' ? 'You were removed from this group.' : 'You left this group.';
    } else if (w?.error) {
      notice.hidden = false;
      notice.textContent = w.error;
    } else {
      notice.hidden = true;
    }
    composer.hidden = !!s?.left;

    const firstKeyAfter = listEl.firstElementChild?.dataset.key;
    if (stickToBottom || atBottom) {
      scroller.scrollTop = scroller.scrollHeight;
      stickToBottom = false;
    } else if (firstKeyBefore && firstKeyAfter !== firstKeyBefore) {
      scroller.scrollTop = topBefore + (scroller.scrollHeight - heightBefore); // older page prepended
    }
  }

  const render = scheduler(() => {
    const convId = store.current;
    placeholder.hidden = !!convId;
    pane.hidden = !convId;
    el.classList.toggle('open', !!convId);
    if (!convId) { shownConv = null; return; }
    const s = store.convs.get(convId);
    if (!s) return;
    if (shownConv !== convId) {
      shownConv = convId;
      nodes.clear();
      clear(listEl);
      stickToBottom = true;
      input.value = '';
      autosize();
      if (window.matchMedia('(min-width: 721px)').matches) input.focus();
    }
    renderHeader(s);
    renderMessages(convId);
  });

  store.on('chat', (convId) => { if (convId === store.current) render(); });
  store.on('convs', render);
  store.on('typing', (convId) => { if (convId === store.current) render(); });
  store.on('presence', render);
  store.on('users', render);
  store.on('group', render);
  // Recall buttons expire with the recall window.
  const tick = setInterval(() => {
    if (!el.isConnected) clearInterval(tick); // signed out: this view is gone
    else if (store.current) render();
  }, 15_000);
  render();
  return { render };
}
