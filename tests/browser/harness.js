// Test harness: a real `mpim serve` on a free port with a temporary data
// dir, headless Debian Chromium driven by playwright-core, and helpers that
// act through the web client's UI.
//
// Environment:
//   MPIM_BIN                 the mpim binary (required)
//   MPIM_BROWSER_ARTIFACTS   where screenshots go (default ./artifacts)
//   MPIM_WEB_ROOT            serve this web/ directory instead of the installed copy
//   CHROMIUM                 the browser (default /usr/bin/chromium)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { before, after } from 'node:test';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const ARTIFACTS = path.resolve(process.env.MPIM_BROWSER_ARTIFACTS || 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export function requireTools() {
  const bin = process.env.MPIM_BIN;
  if (!bin || !fs.existsSync(bin)) throw new Error(`MPIM_BIN must name the built mpim binary (got ${bin || 'nothing'})`);
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/install-deps.sh does)`);
  return bin;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// The target, as the C++ suites take it: MPIM_E2E_TARGET=cluster runs the
// suites against `mpim cluster up` (ClusterServer below) instead of `mpim serve`.
export const CLUSTER = process.env.MPIM_E2E_TARGET === 'cluster';

export class Server {
  // env: extra environment for mpim serve (configuration keys, MPIM_<SECTION>_<KEY>).
  constructor(env = {}) {
    this.env = env;
    this.bin = requireTools();
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpim-browser-'));
    this.proc = null;
    this.log = [];
  }

  get url() { return `http://127.0.0.1:${this.port}`; }
  // Where the next client's page goes (one server: always here).
  nextUrl() { return this.url; }

  async start() {
    if (!this.port) this.port = await freePort();
    const args = ['serve', '--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir];
    if (process.env.MPIM_WEB_ROOT) args.push('--set', `web.root=${process.env.MPIM_WEB_ROOT}`);
    const proc = spawn(this.bin, args, {
      env: {
        ...process.env,
        MPIM_AUTH_ARGON2_OPSLIMIT: '1',
        MPIM_AUTH_ARGON2_MEMLIMIT_KIB: '8',
        MPIM_LOG_LEVEL: process.env.MPIM_LOG_LEVEL || 'warn',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    const keep = (d) => { this.log.push(d.toString()); if (this.log.length > 400) this.log.shift(); };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    const exited = new Promise((resolve) => proc.once('exit', (code, sig) => resolve({ code, sig })));
    this.exited = exited;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`mpim serve exited early:\n${this.log.join('')}`);
      }
      try {
        const r = await fetch(`${this.url}/readyz`);
        if (r.ok) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`mpim serve not ready in 15 s:\n${this.log.join('')}`);
      await sleep(100);
    }
  }

  async kill(signal = 'SIGKILL') {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    if (p.exitCode === null && p.signalCode === null) p.kill(signal);
    await this.exited;
  }

  async stop() {
    await this.kill('SIGTERM');
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  // Direct REST calls (test set-up and checks outside the UI).
  async api(method, p, body, token) {
    return restCall(this.url, method, p, body, token);
  }

  async login(username, password = 'password123') {
    return this.api('POST', '/auth/login', { username, password });
  }
}

async function restCall(base, method, p, body, token) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(`${base}/api/v1${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return data;
}

async function waitReady(url, deadlineMs, log) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`${url} not ready in ${deadlineMs} ms:\n${log()}`);
    await sleep(100);
  }
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

// The cluster of `mpim cluster up` (two gateways, two logic nodes, a task
// node) in a temporary dir, driven as an operator would: kill() kills every
// node, start() again restarts each with its argv (logic, task, then the
// gateways). Clients' pages go to the gateways in turn (nextUrl), REST to
// the first.
export class ClusterServer {
  constructor(env = {}) {
    this.env = env;
    this.bin = requireTools();
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpim-browser-cluster-'));
    this.up = null;
    this.nodes = [];  // {name, role, pid, http, argv, proc}
    this.gateways = [];
    this.turn = 0;
    this.log = [];
  }

  get url() { return `http://${this.gateways[0]}`; }
  nextUrl() { return `http://${this.gateways[this.turn++ % this.gateways.length]}`; }

  childEnv() {
    return {
      ...process.env,
      MPIM_AUTH_ARGON2_OPSLIMIT: '1',
      MPIM_AUTH_ARGON2_MEMLIMIT_KIB: '8',
      MPIM_LOG_LEVEL: process.env.MPIM_LOG_LEVEL || 'warn',
      ...this.env,
    };
  }

  async start() {
    if (this.up) return this.restartNodes();
    const args = ['cluster', 'up', '--dir', this.dir];
    if (process.env.MPIM_WEB_ROOT) args.push('--set', `web.root=${process.env.MPIM_WEB_ROOT}`);
    const up = spawn(this.bin, args, { env: this.childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.up = up;
    this.upExited = new Promise((resolve) => up.once('exit', (code, sig) => resolve({ code, sig })));
    up.stderr.on('data', (d) => { this.log.push(d.toString()); if (this.log.length > 400) this.log.shift(); });
    const line = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`mpim cluster up not ready in 180 s:\n${this.log.join('')}`)), 180_000);
      up.stdout.on('data', (d) => {
        out += d.toString();
        const eol = out.indexOf('\n');
        if (eol >= 0) { clearTimeout(timer); resolve(out.slice(0, eol)); }
      });
      up.once('exit', () => { clearTimeout(timer); reject(new Error(`mpim cluster up exited:\n${this.log.join('')}`)); });
    });
    const ready = JSON.parse(line);
    this.gateways = ready.gateways;
    this.nodes = ready.nodes.map((n) => ({ ...n, proc: null }));
  }

  async restartNodes() {
    for (const role of ['logic', 'task', 'gateway']) {
      for (const n of this.nodes.filter((x) => x.role === role && !alive(x.pid))) {
        const proc = spawn(n.argv[0], n.argv.slice(1), { env: this.childEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
        proc.stderr.on('data', (d) => { this.log.push(d.toString()); if (this.log.length > 400) this.log.shift(); });
        n.proc = proc;
        n.pid = proc.pid;
        n.exited = new Promise((resolve) => proc.once('exit', resolve));
        await waitReady(`http://${n.http}`, 60_000, () => this.log.join(''));
      }
    }
  }

  // Every node (as a crash of the whole service would).
  async kill(signal = 'SIGKILL') {
    for (const n of this.nodes) {
      try { process.kill(n.pid, signal); } catch { /* gone already */ }
    }
    for (const n of this.nodes) {
      if (n.proc) { await n.exited; n.proc = null; continue; }
      while (alive(n.pid)) await sleep(20);  // reaped by cluster up
    }
  }

  async stop() {
    for (const n of this.nodes) {
      if (n.proc) { n.proc.kill('SIGTERM'); await n.exited; n.proc = null; }
    }
    if (this.up && this.up.exitCode === null) {
      this.up.kill('SIGTERM');
      await this.upExited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  async api(method, p, body, token) {
    return restCall(this.url, method, p, body, token);
  }

  async login(username, password = 'password123') {
    return this.api('POST', '/auth/login', { username, password });
  }
}

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

export async function launchBrowser() {
  requireTools();
  // playwright gives every launch a fresh temporary profile (--user-data-dir).
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-renderer-backgrounding', '--disable-background-timer-throttling',
      '--disable-backgrounding-occluded-windows',
    ],
  });
  return browser;
}

// A user in their own browser context (own storage, own socket).
export class Client {
  constructor(server, page, username) {
    this.server = server;
    this.page = page;
    this.username = username;
    this.errors = [];
    this.refreshes = 0;
    page.on('request', (r) => { if (r.url().endsWith('/api/v1/auth/refresh')) this.refreshes++; });
    this.framesSent = []; // ops the page sent over its WebSockets
    page.on('websocket', (ws) => ws.on('framesent', (f) => {
      try { this.framesSent.push(JSON.parse(f.payload)); } catch { /* not JSON */ }
    }));
    page.on('pageerror', (e) => this.errors.push(String(e)));
    // Connection errors are expected while the server is down.
    page.on('console', (m) => {
      if (m.type() !== 'error' || /net::ERR_|WebSocket connection/.test(m.text())) return;
      const url = m.location()?.url;  // which request failed, for the report
      this.errors.push(url ? `${m.text()} (${url})` : m.text());
    });
  }

  static async open(browser, server, username, { viewport = { width: 1100, height: 720 }, register = true } = {}) {
    const ctx = await browser.newContext({ viewport, deviceScaleFactor: 1 });
    const page = await ctx.newPage();
    page.setDefaultTimeout(10_000);
    const c = new Client(server, page, username);
    await page.goto(server.nextUrl());
    if (register) await c.register(); else await c.login();
    return c;
  }

  async register(display) {
    const p = this.page;
    await p.click('#auth-toggle');
    await p.fill('#auth-username', this.username);
    await p.fill('#auth-password', 'password123');
    await p.fill('#auth-display', display || this.username[0].toUpperCase() + this.username.slice(1));
    await p.click('#auth-submit');
    await this.waitOnline();
  }

  async login() {
    const p = this.page;
    await p.fill('#auth-username', this.username);
    await p.fill('#auth-password', 'password123');
    await p.click('#auth-submit');
    await this.waitOnline();
  }

  async waitOnline(timeout = 10_000) {
    await this.page.waitForSelector('#conn-state[data-state=online]', { timeout });
  }

  async userId() {
    const r = await this.server.login(this.username);
    return r.user_id;
  }

  // Opens the private chat with `username` through the user search.
  async startChat(username) {
    const p = this.page;
    await p.fill('#user-search', username);
    await p.click(`#search-results button[data-user="${username}"]`);
    await p.waitForSelector('#composer-input');
  }

  async openConv(title) {
    await this.page.click(`#conv-list button[data-title="${title}"]`);
    await this.page.waitForSelector('#composer-input');
  }

  async send(text) {
    await this.page.fill('#composer-input', text);
    await this.page.press('#composer-input', 'Enter');
  }

  // Waits for a message bubble with this exact text.
  async waitText(text, timeout = 10_000) {
    await this.page.waitForFunction((t) => [...document.querySelectorAll('#messages .msg .text')]
      .some((e) => e.textContent === t), text, { timeout });
  }

  async texts() {
    return this.page.$$eval('#messages .msg .text', (els) => els.map((e) => e.textContent));
  }

  async badge(title) {
    const el = await this.page.$(`#conv-list button[data-title="${title}"] .badge`);
    return el ? Number(await el.textContent()) : 0;
  }

  async shot(name) {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await this.page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
  }
}

// Registers the hooks of a suite: one server and one browser for all its
// tests; at the end, no page may have logged an error (but those matching
// `allow`).
export function suite(env, { allow } = {}) {
  const ctx = {
    server: null,
    browser: null,
    clients: [],
    async open(username, opts) {
      const c = await Client.open(ctx.browser, ctx.server, username, opts);
      ctx.clients.push(c);
      return c;
    },
  };
  before(async () => {
    ctx.server = CLUSTER ? new ClusterServer(env) : new Server(env);
    await ctx.server.start();
    ctx.browser = await launchBrowser();
  });
  after(async () => {
    await ctx.browser?.close();
    await ctx.server?.stop();
    for (const c of ctx.clients) {
      assert.deepEqual(c.errors.filter((e) => !allow?.test(e)), [], `${c.username}: page errors`);
    }
  });
  return ctx;
}
