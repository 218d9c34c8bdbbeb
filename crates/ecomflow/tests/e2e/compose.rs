//! docker-compose.yaml starts the same server versions the test suite runs
//! (scripts/services.sh), on the original system's host ports, and an `ecomflow` service
//! whose command, environment and image agree with the shipped pipeline files and the
//! Dockerfile. (The compose file itself cannot be run here: no Docker engine, and the
//! server images cannot be pulled; scripts/test-image.sh runs the image with podman.)

use crate::common::{read, repo};
use std::collections::BTreeSet;
use std::process::Command;
use yaml_serde::Value;

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

fn compose() -> Value {
    yaml_serde::from_str(&read("docker-compose.yaml")).expect("docker-compose.yaml is YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("docker-compose.yaml has no `{name}` service"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .map(|x| x.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The `${NAME...}` variables a text reads.
fn variables(text: &str) -> BTreeSet<String> {
    text.split("${")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn compose_runs_the_tested_versions_on_the_original_ports() {
    let compose = compose();
    let services = read("scripts/services.sh");
    let kafka = shell_var(&services, "KAFKA_VERSION");
    let es = shell_var(&services, "ES_VERSION");
    for (name, image) in [
        ("kafka", format!("apache/kafka:{kafka}")),
        (
            "elasticsearch",
            format!("docker.elastic.co/elasticsearch/elasticsearch:{es}"),
        ),
        ("kibana", format!("docker.elastic.co/kibana/kibana:{es}")),
        ("postgres", "postgres:15".to_string()),
    ] {
        let s = service(&compose, name);
        assert_eq!(s["image"].as_str(), Some(image.as_str()), "{name}'s image");
        assert!(s.get("healthcheck").is_some(), "{name} has no healthcheck");
    }
    for (name, port) in [
        ("kafka", "9092:9092"),
        ("postgres", "5433:5432"),
        ("elasticsearch", "9200:9200"),
        ("kibana", "5601:5601"),
    ] {
        assert!(
            strings(&service(&compose, name)["ports"]).contains(&port.to_string()),
            "{name} does not publish {port}"
        );
    }
    assert!(
        compose["services"].get("zookeeper").is_none(),
        "Kafka runs in KRaft mode"
    );
}

#[test]
fn the_ecomflow_service_runs_the_real_stack_overlay_in_two_replicas() {
    let compose = compose();
    let ecomflow = service(&compose, "ecomflow");
    assert_eq!(
        ecomflow["build"].as_str(),
        Some("."),
        "built from the Dockerfile"
    );
    assert!(repo().join("Dockerfile").exists());
    assert_eq!(ecomflow["deploy"]["replicas"].as_u64(), Some(2));

    // The command: `run` of shipped pipeline files, the flagship then the overlay.
    let command = strings(&ecomflow["command"]);
    assert_eq!(command.first().map(String::as_str), Some("run"));
    let files: Vec<String> = command[1..]
        .iter()
        .map(|f| {
            f.strip_prefix("/pipelines/")
                .unwrap_or_else(|| panic!("{f} is not a shipped pipeline (/pipelines/...)"))
                .to_string()
        })
        .collect();
    assert_eq!(files, ["ecommerce.toml", "real-stack.toml"]);

    // The environment: every variable is one the pipelines read, and the ones that place
    // the job on the stack are set, pointing at the compose services.
    let env = ecomflow["environment"]
        .as_mapping()
        .expect("a map of variables");
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().expect("name").to_string(),
                v.as_str().expect("a string value").to_string(),
            )
        })
        .collect();
    let pipelines: String = files
        .iter()
        .map(|f| read(&format!("pipelines/{f}")))
        .collect();
    let read_by_pipelines = variables(&pipelines);
    for (name, _) in &env {
        assert!(
            read_by_pipelines.contains(name),
            "the ecomflow service sets {name}, which no pipeline file reads"
        );
    }
    let value = |name: &str| -> &str {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("the ecomflow service does not set {name}"))
    };
    assert!(
        read("docker-compose.yaml")
            .contains(&format!("PLAINTEXT://{}", value("KAFKA_BOOTSTRAP_SERVERS"))),
        "KAFKA_BOOTSTRAP_SERVERS is not a listener Kafka advertises to containers"
    );
    assert!(value("DATABASE_URL").starts_with("postgres://postgres:postgres@postgres:5432/"));
    assert_eq!(
        value("ECOMFLOW_STATE_URL"),
        value("DATABASE_URL"),
        "checkpoints live in the tables' database: the exactly-once mode"
    );
    assert_eq!(value("ELASTICSEARCH_URL"), "http://elasticsearch:9200");
    assert!(
        value("ECOMFLOW_HTTP_TOKEN").starts_with("${ECOMFLOW_HTTP_TOKEN:?"),
        "the token comes from the user's environment, and is required"
    );

    // The servers are healthy before it starts; it is healthy once /ready answers.
    for server in ["kafka", "postgres", "elasticsearch"] {
        assert_eq!(
            ecomflow["depends_on"][server]["condition"].as_str(),
            Some("service_healthy"),
            "ecomflow does not wait for {server} to be healthy"
        );
    }
    let check = strings(&ecomflow["healthcheck"]["test"]).join(" ");
    assert!(check.contains("http://127.0.0.1:8640/ready"), "{check}");
    // Each replica's dashboard on a host port of its own.
    assert_eq!(strings(&ecomflow["ports"]), ["8640-8641:8640"]);

    // The files validate with that environment, as the image would run them.
    let mut validate = Command::new(env!("CARGO_BIN_EXE_ecomflow"));
    validate.arg("validate").current_dir(repo());
    for f in &files {
        validate.arg(repo().join("pipelines").join(f));
    }
    for (name, v) in &env {
        let v = if v.starts_with("${") {
            "a-token-of-sixteen-chars"
        } else {
            v
        };
        validate.env(name, v);
    }
    let out = validate.output().expect("runs");
    assert!(
        out.status.success(),
        "the ecomflow service's pipeline does not validate:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_image_holds_every_file_the_shipped_pipelines_refer_to() {
    let dockerfile = read("Dockerfile");
    let mut referred = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("pipelines")).expect("pipelines/") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        for quoted in text.split('"').skip(1).step_by(2) {
            if let Some(rest) = quoted.strip_prefix("../") {
                let top = rest.split('/').next().unwrap_or_default().to_string();
                assert!(
                    repo().join(&top).is_dir(),
                    "a pipeline refers to ../{rest}, outside any directory of the repository"
                );
                referred.insert(top);
            }
        }
    }
    assert!(referred.contains("migrations"), "{referred:?}");
    referred.insert("pipelines".into());
    for dir in referred {
        assert!(
            dockerfile.contains(&format!("COPY {dir}/ /{dir}/")),
            "the Dockerfile does not copy {dir}/ beside /pipelines"
        );
    }
    for line in [
        "ENTRYPOINT [\"ecomflow\"]",
        "USER ecomflow",
        "VOLUME [\"/data\"]",
        "EXPOSE 8640",
        "ENV ECOMFLOW_HTTP_ADDRESS=0.0.0.0",
    ] {
        assert!(dockerfile.contains(line), "the Dockerfile lacks `{line}`");
    }
    assert!(
        read("pipelines/ecommerce.toml")
            .contains("address = \"${ECOMFLOW_HTTP_ADDRESS:-127.0.0.1}\""),
        "the flagship does not take its HTTP address from ECOMFLOW_HTTP_ADDRESS"
    );
}
