//! The binary itself: its own PostgreSQL under a data directory, `district create`, serve,
//! stop, restart without losing data.

use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    c.env_remove("DATABASE_URL").env("RUST_LOG", "warn");
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_healthy(base: &str) -> bool {
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn stop(child: &mut std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM");
}

#[tokio::test]
async fn own_cluster_serves_and_survives_a_restart() {
    let dir = tempfile::Builder::new()
        .prefix("rc-cli")
        .tempdir_in("/tmp")
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");

    let out = bin()
        .args(["--data-dir", data.to_str().unwrap()])
        .args([
            "district",
            "create",
            "--name",
            "Springfield",
            "--slug",
            "springfield",
            "--admin-email",
            "admin@springfield.org",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("one-time password: "))
        .expect("prints a one-time password")
        .to_string();
    assert!(
        !data.join("postgres/postmaster.pid").exists(),
        "the CLI stopped the cluster it started"
    );

    for round in 0..2 {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log_path = dir.path().join(format!("serve-{round}.log"));
        let mut child = bin()
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        assert!(wait_healthy(&base).await, "round {round}: server came up");
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let login = client
            .get(format!("{base}/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let token = crate::helpers::extract_csrf(&login).unwrap();
        let r = client
            .post(format!("{base}/login"))
            .form(&[
                ("login", "admin@springfield.org"),
                ("password", password.as_str()),
                ("_csrf", token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            303,
            "round {round}: the admin from before the restart signs in"
        );
        if round == 0 {
            // The one-time password works once: the admin chooses theirs, which the next
            // round (after a restart) signs in with.
            assert_eq!(r.headers()["location"], "/account/password");
            let form = client
                .get(format!("{base}/account/password"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let token = crate::helpers::extract_csrf(&form).unwrap();
            let own = "the-admins-own-passphrase";
            let r = client
                .post(format!("{base}/account/password"))
                .form(&[
                    ("current", password.as_str()),
                    ("password", own),
                    ("confirm", own),
                    ("_csrf", token.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 303, "the admin's own password is set");
            password = own.to_string();
        } else {
            assert_eq!(r.headers()["location"], "/");
        }
        stop(&mut child);
        // Serving and stopping log no error. (The job loops' errors on finding the pool
        // closed, fixed in src/jobs, showed only after a longer run than this test's.)
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert!(
            !log.contains("ERROR"),
            "round {round}: errors logged while serving and stopping:\n{log}"
        );
        assert!(
            !data.join("postgres/postmaster.pid").exists(),
            "round {round}: PostgreSQL stopped with the server"
        );
    }

    let out = bin()
        .args(["--data-dir", data.to_str().unwrap(), "district", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("springfield\tSpringfield"));
}

#[test]
fn missing_district_is_a_clear_error() {
    let dir = tempfile::Builder::new()
        .prefix("rc-cli")
        .tempdir_in("/tmp")
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = bin()
        .args([
            "--data-dir",
            dir.path().join("d").to_str().unwrap(),
            "token",
            "create",
            "--district",
            "nope",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no district with slug \"nope\""));
}
