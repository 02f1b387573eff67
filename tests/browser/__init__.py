"""Dashboard pages in real headless Chromium (Debian's /usr/bin/chromium), driven by Playwright."""
