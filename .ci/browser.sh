# Sourced by .ci/run: installs Debian's chromium if it is missing, for the test that fills the
# Prefect UI's approval form (Playwright drives it by path and never downloads a browser).
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
MLC_TEST_CHROMIUM=$(command -v chromium)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
