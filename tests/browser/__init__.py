"""Browser tests' shared parts: a live test site, headless Chromium, axe-core."""
