use super::*;

pub(super) fn load(file: Option<&str>, overrides: &[&str]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doorbell.toml");
    if let Some(text) = file {
        std::fs::write(&path, text).unwrap();
    }
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Config::load(&Sources {
        file: file.map(|_| path.as_path()),
        overrides: &overrides,
    })
}

#[test]
fn file_then_cli_override() {
    let c = load(
        Some("[media]\ncamera = \"test\"\nframerate = 15\n"),
        &["media.framerate=20", "media.ice_local_addresses=127.0.0.1"],
    )
    .unwrap();
    assert_eq!(c.media.camera, CameraKind::Test);
    assert_eq!(c.media.framerate, 20);
    assert_eq!(c.media.ice_local_addresses, vec!["127.0.0.1".to_string()]);
    assert_eq!(c.call.ring_timeout_secs, 30);
}

#[test]
fn misspelled_key_is_named() {
    let err = load(Some("[call]\nring_timout_secs = 10\n"), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("ring_timout_secs"), "{err}");
}

#[test]
fn bad_enum_value_lists_choices() {
    let err = load(Some("[media]\ncamera = \"webcam\"\n"), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("webcam") && err.contains("libcamera"), "{err}");
}

#[test]
fn out_of_range_names_key_and_fix() {
    let err = load(None, &["media.framerate=500"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("media.framerate") && err.contains("fix:"),
        "{err}"
    );
}

#[test]
fn hub_keepalive_defaults_to_the_hubs_ping_interval_and_zero_is_refused() {
    assert_eq!(load(None, &[]).unwrap().hub.keepalive_secs, 20);
    assert_eq!(
        load(None, &["hub.keepalive_secs=2"])
            .unwrap()
            .hub
            .keepalive_secs,
        2
    );
    let err = load(None, &["hub.keepalive_secs=0"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hub.keepalive_secs") && err.contains("fix:"),
        "{err}"
    );
}

#[test]
fn echo_cancel_is_on_by_default_and_can_be_turned_off() {
    assert!(load(None, &[]).unwrap().media.echo_cancel);
    let c = load(Some("[media]\necho_cancel = false\n"), &[]).unwrap();
    assert!(!c.media.echo_cancel);
    let c = load(None, &["media.echo_cancel=false"]).unwrap();
    assert!(!c.media.echo_cancel);
    // A non-boolean is refused (by type), naming the key and the value.
    let err = load(Some("[media]\necho_cancel = \"maybe\"\n"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("echo_cancel") && err.contains("maybe") && err.contains("fix:"),
        "{err}"
    );
}

#[test]
fn vp8_is_offered_by_default_and_can_be_turned_off() {
    assert!(load(None, &[]).unwrap().media.vp8);
    assert!(!load(Some("[media]\nvp8 = false\n"), &[]).unwrap().media.vp8);
    assert!(!load(None, &["media.vp8=false"]).unwrap().media.vp8);
}

#[test]
fn missing_hub_secret_is_refused_with_no_default() {
    let c = load(None, &["hub.url=ws://127.0.0.1:9/ws", "hub.door_id=d-1"]).unwrap();
    let err = c.validate_hub().unwrap_err().to_string();
    assert!(err.contains("hub.secret"), "{err}");
}

#[test]
fn secret_is_not_printed() {
    let c = load(None, &["hub.secret=hunter2-very-secret"]).unwrap();
    assert_eq!(c.hub.secret, "hunter2-very-secret");
    assert!(!c.to_toml().contains("hunter2"));
}

#[test]
fn voice_message_secs_defaults_to_20_and_a_bad_value_names_the_key() {
    assert_eq!(load(None, &[]).unwrap().call.voice_message_secs, 20);
    assert_eq!(
        load(None, &["call.voice_message_secs=0"])
            .unwrap()
            .call
            .voice_message_secs,
        0,
        "0 turns voice messages off"
    );
    let err = load(Some("[call]\nvoice_message_secs = 90\n"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("call.voice_message_secs") && err.contains("0-60"),
        "{err}"
    );
}

#[test]
fn congestion_control_is_on_by_default_with_a_clamped_start() {
    let media = load(None, &[]).unwrap().media;
    let range = media.bitrate_range().expect("gcc by default");
    assert_eq!(
        (range.min_kbps, range.start_kbps, range.max_kbps),
        (150, 1200, 2500)
    );
    // A bitrate written before congestion control still starts, inside the range.
    let c = load(None, &["media.video_bitrate_kbps=3000"]).unwrap();
    assert_eq!(c.media.bitrate_range().unwrap().start_kbps, 2500);
    let c = load(None, &["media.congestion_control=off"]).unwrap();
    assert_eq!(c.media.bitrate_range(), None);
    let err = load(None, &["media.video_min_kbps=3000"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("media.video_min_kbps") && err.contains("fix:"),
        "{err}"
    );
    let err = load(None, &["media.congestion_control=bbr"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("gcc") && err.contains("off"), "{err}");
    let err = load(None, &["media.test_pattern=ball ! fakesink"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("media.test_pattern"), "{err}");
}

#[test]
fn embedded_hub_allowed_hosts_are_a_list_from_the_command_line_or_a_file() {
    let c = load(None, &["hub.allowed_hosts=doorbell.fritz.box,door.lan"]).unwrap();
    assert_eq!(c.hub.allowed_hosts, ["doorbell.fritz.box", "door.lan"]);
    let c = Config::from_toml("[hub]\nallowed_hosts = [\"door.lan\"]\n").unwrap();
    assert_eq!(c.hub.allowed_hosts, ["door.lan"]);
    assert!(Config::default().hub.allowed_hosts.is_empty());
}
