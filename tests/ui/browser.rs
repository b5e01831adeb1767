//! Headless Chromium driven over W3C WebDriver: Debian's `chromedriver`, spawned on a free port
//! as a child of the test, and `thirtyfour` as the client.
//!
//! Every wait is a bounded poll for something on the page (an element, a text); the Web UI
//! long-polls the server, so the network never goes idle and page-load events say nothing.
//! A failed wait saves a screenshot and the page source next to the test's screenshots before
//! it returns its error.

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use thirtyfour::{
    ChromiumLikeCapabilities, DesiredCapabilities, WebDriver, WebElement, prelude::*,
};

/// How long any one wait may take.
pub(crate) const WAIT: Duration = Duration::from_secs(30);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(250);

/// The two binaries: found on `PATH` (or named by `CHROMIUM` / `CHROMEDRIVER`).
pub(crate) struct Binaries {
    pub(crate) chromium: PathBuf,
    pub(crate) chromedriver: PathBuf,
}

impl Binaries {
    /// Both binaries, or what is missing and how to install it.
    pub(crate) fn find() -> Result<Binaries, String> {
        let chromium = find_binary("CHROMIUM", &["chromium", "chromium-browser"]);
        let chromedriver = find_binary("CHROMEDRIVER", &["chromedriver"]);
        match (chromium, chromedriver) {
            (Some(chromium), Some(chromedriver)) => Ok(Binaries { chromium, chromedriver }),
            (chromium, chromedriver) => {
                let missing: Vec<&str> = [
                    chromium.is_none().then_some("chromium"),
                    chromedriver.is_none().then_some("chromedriver"),
                ]
                .into_iter()
                .flatten()
                .collect();
                Err(format!(
                    "{} not found (on PATH, or as $CHROMIUM / $CHROMEDRIVER): \
                     apt-get install -y chromium chromium-driver",
                    missing.join(" and ")
                ))
            }
        }
    }
}

/// The file `$var` names when it is set, else the first of `names` on `PATH`.
fn find_binary(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// `chromedriver`, in a process group of its own so that the Chromium it starts goes with it:
/// the group is killed and the driver reaped on drop.
struct Chromedriver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Chromedriver {
    async fn spawn(binary: &Path, dir: &Path) -> anyhow::Result<Chromedriver> {
        use std::os::unix::process::CommandExt;

        let port = convo_testkit::free_port()?;
        let log = dir.join("chromedriver.log");
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut driver = Chromedriver { child, url: format!("http://127.0.0.1:{port}"), log };
        driver.ready().await?;
        Ok(driver)
    }

    /// Waits for `GET /status` to say the driver is ready.
    async fn ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("chromedriver exited with {status}: {}", self.log());
            }
            let status = http.get(format!("{}/status", self.url)).send().await;
            if let Ok(resp) = status
                && let Ok(body) = resp.json::<serde_json::Value>().await
                && body["value"]["ready"] == true
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("chromedriver not ready at {} after {WAIT:?}: {}", self.url, self.log());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        format!(
            "chromedriver log (last lines):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The whole group, by the id of the process this test started: chromedriver and the
        // browser it launched.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session, and the folder its screenshots go to.
pub(crate) struct Browser {
    driver: Option<WebDriver>,
    shots: PathBuf,
    // Dropped after the session: the driver (and with it the browser), then its profile.
    _chromedriver: Chromedriver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (1400×1000) on a fresh profile; screenshots
    /// go to `shots`.
    pub(crate) async fn start(binaries: &Binaries, shots: PathBuf) -> anyhow::Result<Browser> {
        let profile = tempfile::tempdir()?;
        let chromedriver = Chromedriver::spawn(&binaries.chromedriver, profile.path()).await?;
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&binaries.chromium.to_string_lossy())?;
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--window-size=1400,1000",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ] {
            caps.add_arg(arg)?;
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().join("chromium").display()))?;
        let driver = WebDriver::new(chromedriver.url.clone(), caps)
            .await
            .map_err(|e| anyhow!("starting a Chromium session: {e}\n{}", chromedriver.log()))?;
        Ok(Browser { driver: Some(driver), shots, _chromedriver: chromedriver, _profile: profile })
    }

    fn driver(&self) -> &WebDriver {
        self.driver.as_ref().expect("the session is open until quit")
    }

    /// Opens `url`.
    pub(crate) async fn open(&self, url: &str) -> anyhow::Result<()> {
        self.driver().goto(url).await.with_context(|| format!("opening {url}"))
    }

    /// The address the browser shows.
    pub(crate) async fn current_url(&self) -> anyhow::Result<String> {
        Ok(self.driver().current_url().await?.to_string())
    }

    /// Saves a screenshot of the window as `<name>.png`; returns its path.
    pub(crate) async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.driver().screenshot_as_png().await?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Polls `check` until it returns `Some`, for at most [`WAIT`]; on timeout saves
    /// `failed-<step>.png` and `failed-<step>.html` and fails with `check`'s last complaint.
    /// `reload_every` reloads the page between tries (for pages that do not refresh by
    /// themselves).
    pub(crate) async fn wait_for<T, F, Fut>(
        &self,
        step: &str,
        reload_every: Option<Duration>,
        mut check: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let start = tokio::time::Instant::now();
        let mut reloaded = start;
        let mut last;
        loop {
            match check().await {
                Ok(value) => return Ok(value),
                Err(e) => last = e,
            }
            let now = tokio::time::Instant::now();
            if now - start >= WAIT {
                break;
            }
            if let Some(every) = reload_every
                && now - reloaded >= every
            {
                let _ = self.driver().refresh().await;
                reloaded = now;
            }
            tokio::time::sleep(POLL).await;
        }
        let saved = self.save_failure(step).await;
        Err(last.context(format!("{step}: not seen within {WAIT:?} ({saved})")))
    }

    /// A screenshot and the page source of the page as it is, for a failure.
    async fn save_failure(&self, step: &str) -> String {
        let _ = self.driver().enter_default_frame().await;
        let png = self.screenshot(&format!("failed-{step}")).await;
        let html = match self.driver().source().await {
            Ok(source) => {
                let path = self.shots.join(format!("failed-{step}.html"));
                std::fs::write(&path, source).map(|()| path).map_err(anyhow::Error::from)
            }
            Err(e) => Err(e.into()),
        };
        match (png, html) {
            (Ok(png), Ok(html)) => format!("saved {} and {}", png.display(), html.display()),
            (png, html) => format!("screenshot: {png:?}, page source: {html:?}"),
        }
    }

    /// Clicks the element `css` matches, once there is one that takes the click.
    pub(crate) async fn click(&self, step: &str, css: &str) -> anyhow::Result<()> {
        self.wait_for(step, None, || async {
            self.one(css).await?.click().await?;
            Ok(())
        })
        .await
    }

    /// The elements `css` matches now (none is not an error).
    pub(crate) async fn all(&self, css: &str) -> anyhow::Result<Vec<WebElement>> {
        Ok(self.driver().find_all(By::Css(css)).await?)
    }

    /// The first element `css` matches now.
    pub(crate) async fn one(&self, css: &str) -> anyhow::Result<WebElement> {
        self.driver().find(By::Css(css)).await.with_context(|| format!("no element {css}"))
    }

    /// The rendered text of the first element `css` matches now.
    pub(crate) async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.one(css).await?.text().await?)
    }

    /// The text of the document inside the iframe `css` matches (the UI renders summaries and
    /// current details as Markdown in frames of their own).
    pub(crate) async fn frame_text(&self, css: &str) -> anyhow::Result<String> {
        let frame = self.one(css).await?;
        frame.enter_frame().await?;
        let text = self.driver().find(By::Css("body")).await;
        let text = match text {
            Ok(body) => body.text().await.map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        self.driver().enter_default_frame().await?;
        text
    }

    /// Ends the browser session (the driver process ends when this is dropped).
    pub(crate) async fn quit(mut self) -> anyhow::Result<()> {
        if let Some(driver) = self.driver.take() {
            driver.quit().await?;
        }
        Ok(())
    }
}
