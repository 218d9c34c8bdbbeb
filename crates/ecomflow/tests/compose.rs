//! docker-compose.yaml starts the same server versions the test suite runs
//! (scripts/services.sh), on the original system's host ports.

use std::path::Path;

fn read(relative: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(relative),
    )
    .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The value of `NAME="value"` in a shell script.
fn shell_var(script: &str, name: &str) -> String {
    let prefix = format!("{name}=\"");
    let line = script
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{name} is not set in the script"));
    line[prefix.len()..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn compose_runs_the_tested_versions_on_the_original_ports() {
    let compose = read("docker-compose.yaml");
    let services = read("scripts/services.sh");
    let kafka = shell_var(&services, "KAFKA_VERSION");
    let es = shell_var(&services, "ES_VERSION");
    for image in [
        format!("image: apache/kafka:{kafka}"),
        format!("image: docker.elastic.co/elasticsearch/elasticsearch:{es}"),
        format!("image: docker.elastic.co/kibana/kibana:{es}"),
        "image: postgres:15".to_string(),
    ] {
        assert!(
            compose.contains(&image),
            "docker-compose.yaml lacks `{image}`"
        );
    }
    for port in [
        "\"9092:9092\"",
        "\"5433:5432\"",
        "\"9200:9200\"",
        "\"5601:5601\"",
    ] {
        assert!(
            compose.contains(port),
            "docker-compose.yaml lacks port {port}"
        );
    }
    assert!(!compose.contains("zookeeper"), "Kafka runs in KRaft mode");
    assert_eq!(compose.matches("healthcheck:").count(), 4);
}
