import { defineConfig } from '@playwright/test';

// Driven by tests/web/test_browser.py, which starts a real `oms serve` on the local servers and
// passes its address and keys in OMS_WEB_* variables. Debian's chromium, never a download.
export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results/playwright',
  timeout: 120_000,
  expect: { timeout: 10_000 },
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: process.env.OMS_WEB_BASE ?? 'http://127.0.0.1:8080',
    viewport: { width: 1440, height: 900 },
    colorScheme: 'dark',
    screenshot: 'only-on-failure',
    trace: 'off',
    serviceWorkers: 'block',
    launchOptions: {
      executablePath: process.env.OMS_WEB_CHROMIUM ?? '/usr/bin/chromium',
      // Playwright gives each launch a fresh temporary --user-data-dir of its own.
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // nothing but 127.0.0.1 resolves: the browser cannot reach beyond this machine
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      ],
    },
  },
});
