// Entry point: wires the REST client, the socket, the messaging engine and
// the views, and routes between the sign-in screen and the chat screen.
// The open conversation is kept in the URL hash (#/c/<conv_id>) so that the
// phone's back button returns to the list.
import { Api } from './api.js';
import { Socket } from './socket.js';
import { Store } from './store.js';
import { Messenger } from './messages.js';
import { h } from './ui/dom.js';
import { renderAuth } from './ui/auth.js';
import { mountSidebar } from './ui/sidebar.js';
import { mountChat } from './ui/chat.js';
import { mountGroupPanel, openNewGroupDialog } from './ui/group.js';

const root = document.getElementById('app');
const api = new Api();
const store = new Store();
let messenger = null;
let socket = null;
let panel = null;

function toast(text) {
  const host = document.getElementById('toasts');
  const t = h('div', { class: 'toast', role: 'alert' }, text);
  host.append(t);
  setTimeout(() => t.remove(), 5000);
}

function convFromHash() {
  const m = /^#\/c\/(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function openConv(convId) {
  if (convFromHash() !== convId) location.hash = `#/c/${encodeURIComponent(convId)}`;
  else route();
}

function route() {
  if (!messenger) return;
  const convId = convFromHash();
  if (convId && /^(p:\d+:\d+|g:\d+)$/.test(convId)) {
    if (store.current !== convId) {
      messenger.openConv(convId);
      if (panel && panel.groupId && `g:${panel.groupId}` !== convId) panel.hide();
    }
  } else if (store.current) {
    messenger.closeConv();
    panel?.hide();
  }
}

function showAuth(notice) {
  document.body.classList.remove('signed-in');
  renderAuth(root, { api, notice, onLoggedIn: startSession });
}

async function startSession() {
  store.reset();
  socket = new Socket(api, {
    onHello: (hello) => messenger.onHello(hello),
    onEvent: (f) => messenger.onEvent(f),
    onState: (s) => messenger.setConn(s),
    onKicked: (reason) => endSession(reason === 'logout' ? 'You were logged out.' : `Signed out: ${reason}`),
  });
  messenger = new Messenger(store, api, socket);
  store.on('toast', toast);

  const side = h('aside', { class: 'sidebar', id: 'sidebar' });
  const main = h('main', { class: 'chat', id: 'chat' });
  const info = h('aside', { class: 'panel', id: 'group-panel', hidden: true });
  document.body.classList.add('signed-in');
  root.replaceChildren(h('div', { class: 'layout' }, side, main, info));

  panel = mountGroupPanel(info, {
    api, store, messenger,
    onClose: () => panel.hide(),
    onLeft: () => { panel.hide(); location.hash = ''; },
  });
  mountSidebar(side, {
    store, api, messenger,
    onOpen: openConv,
    onNewGroup: () => openNewGroupDialog(document.body, { api, store, messenger, onCreated: openConv }),
    onLogout: async () => {
      const m = messenger;
      m.stop();
      await api.logout();
      endSession('You are signed out.');
    },
  });
  mountChat(main, {
    store, messenger,
    onBack: () => { location.hash = ''; },
    onInfo: (convId) => {
      const gid = store.groupId(convId);
      if (!gid) return;
      if (panel.groupId === gid) panel.hide(); else panel.show(gid);
    },
  });
  store.on('convs', () => document.body.classList.toggle('chat-open', !!store.current));

  try {
    await messenger.start();
  } catch (e) {
    endSession(`Could not start: ${e.message}`);
    return;
  }
  route();
}

function endSession(notice) {
  messenger?.stop();
  messenger = null;
  socket = null;
  panel = null;
  api.tokens = null;
  store.reset();
  store.listeners.clear();
  document.body.classList.remove('chat-open');
  if (location.hash) history.replaceState(null, '', location.pathname);
  showAuth(notice);
}

api.onLoggedOut = (reason) => endSession(`Signed out: ${reason}.`);
window.addEventListener('hashchange', route);
document.addEventListener('visibilitychange', () => {
  if (messenger && store.current && document.visibilityState === 'visible') messenger.markRead(store.current);
});

showAuth();
