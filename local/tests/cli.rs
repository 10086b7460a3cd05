//! reflector-local refuses to start on bad configuration, naming the variable.

use std::process::Command;

#[test]
fn unknown_default_platform_stops_start_up_naming_the_variable_and_accepted_values() {
    let out = Command::new(env!("CARGO_BIN_EXE_reflector-local"))
        .env("DEFAULT_VIDEO_PLATFORM", "zoom")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEFAULT_VIDEO_PLATFORM"), "{stderr}");
    assert!(stderr.contains("whereby, daily, mock"), "{stderr}");
}

#[test]
fn missing_emulator_endpoint_is_explained() {
    let out = Command::new(env!("CARGO_BIN_EXE_reflector-local"))
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AWS_ENDPOINT_URL"), "{stderr}");
}
