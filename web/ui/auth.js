// The sign-in / register screen.
import { h } from './dom.js';

const LAST_USER_KEY = 'mpim.lastUsername'; // a convenience; never a token

export function renderAuth(root, { api, onLoggedIn, notice }) {
  let mode = 'login';
  const err = h('p', { class: 'auth-error', role: 'alert', id: 'auth-error' });
  const info = h('p', { class: 'auth-info', id: 'auth-info' }, notice || '');
  let lastUser = '';
  try { lastUser = localStorage.getItem(LAST_USER_KEY) || ''; } catch { /* storage off */ }
  const username = h('input', {
    id: 'auth-username', name: 'username', autocomplete: 'username', required: true, value: lastUser,
    minlength: 3, maxlength: 32, pattern: '[a-z0-9_.\\-]+', autocapitalize: 'none', spellcheck: 'false',
    placeholder: 'username',
  });
  const password = h('input', {
    id: 'auth-password', name: 'password', type: 'password', required: true, minlength: 8, maxlength: 128,
    autocomplete: 'current-password', placeholder: 'password (8+ characters)',
  });
  const display = h('input', { id: 'auth-display', name: 'display_name', maxlength: 64, placeholder: 'display name (optional)', autocomplete: 'name' });
  const displayRow = h('label', { class: 'field', hidden: true }, h('span', {}, 'Display name'), display);
  const submit = h('button', { type: 'submit', class: 'primary', id: 'auth-submit' }, 'Sign in');
  const toggle = h('button', { type: 'button', class: 'link', id: 'auth-toggle' }, 'Create an account');

  const setMode = (m) => {
    mode = m;
    displayRow.hidden = m !== 'register';
    submit.textContent = m === 'register' ? 'Create account' : 'Sign in';
    toggle.textContent = m === 'register' ? 'I have an account' : 'Create an account';
    password.autocomplete = m === 'register' ? 'new-password' : 'current-password';
    err.textContent = '';
  };
  toggle.addEventListener('click', () => setMode(mode === 'login' ? 'register' : 'login'));

  const form = h('form', { class: 'auth-form', id: 'auth-form', novalidate: true },
    h('label', { class: 'field' }, h('span', {}, 'Username'), username),
    h('label', { class: 'field' }, h('span', {}, 'Password'), password),
    displayRow, err, submit, toggle);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    info.textContent = '';
    const u = username.value.trim().toLowerCase();
    if (!/^[a-z0-9_.-]{3,32}$/.test(u)) { err.textContent = 'Username: 3-32 characters of a-z, 0-9, _ . -'; return; }
    if (password.value.length < 8) { err.textContent = 'Password: at least 8 characters'; return; }
    submit.disabled = true;
    try {
      if (mode === 'register') {
        try {
          await api.register(u, password.value, display.value.trim());
        } catch (e2) {
          if (e2.code === 'already_exists') throw new Error('That username is taken');
          throw e2;
        }
      }
      await api.login(u, password.value);
      try { localStorage.setItem(LAST_USER_KEY, u); } catch { /* storage off */ }
      await onLoggedIn();
    } catch (e2) {
      err.textContent = e2.code === 'unauthenticated' ? 'Wrong username or password'
        : e2.code === 'rate_limited' ? 'Too many attempts; try again in a minute'
          : e2.message;
    } finally {
      submit.disabled = false;
    }
  });

  root.replaceChildren(h('div', { class: 'auth-screen' },
    h('div', { class: 'auth-card' },
      h('div', { class: 'brand' }, h('span', { class: 'brand-mark' }, 'M'), h('h1', {}, 'MPIM')),
      h('p', { class: 'tagline' }, 'Instant messaging, served by MPIM itself.'),
      info, form)));
  (lastUser ? password : username).focus();
}
