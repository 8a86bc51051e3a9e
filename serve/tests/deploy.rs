//! The deployment files against the real binary: the Dockerfile, the
//! OpenFaaS stack.yml, the Kubernetes manifests and the systemd unit.
//!
//! Each test reads a file and starts `serve` with the arguments and
//! environment that file gives, with the listen address rewritten to
//! 127.0.0.1:0 and the model to a small synthetic checkpoint. It then checks
//! that the binary serves the ports, probe paths and limits the file names.
//! No container runtime or cluster is needed.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cifaas_serve::cli::Mode;
use cifaas_serve::duration::parse_go_duration;
use serde_yaml_ng::Value;
use support::{get, run_binary, Files, Serve};

const SERVE: &str = env!("CARGO_BIN_EXE_serve");

/// Paths the OpenFaaS gateway and faas-netes probe on a function.
const OPENFAAS_PROBE_PATHS: [&str; 2] = ["/_/health", "/_/ready"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("serve/ has a parent folder")
        .to_path_buf()
}

fn read_text(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn read_yaml(relative: &str) -> Value {
    serde_yaml_ng::from_str(&read_text(relative))
        .unwrap_or_else(|error| panic!("{relative} is not valid YAML: {error}"))
}

fn string_at<'a>(value: &'a Value, field: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string: {value:?}"))
}

// ---------------------------------------------------------------------------
// Dockerfile

/// One Dockerfile instruction: the upper-case keyword and its arguments,
/// with continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    arguments: String,
}

fn parse_dockerfile(text: &str) -> Vec<Instruction> {
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let (keyword, arguments) = pending.split_once(' ').unwrap_or((pending.as_str(), ""));
        instructions.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            arguments: arguments.trim().to_owned(),
        });
        pending.clear();
    }
    instructions
}

fn dockerfile() -> Vec<Instruction> {
    parse_dockerfile(&read_text("Dockerfile"))
}

/// Parses the JSON array of an exec-form instruction, panicking on shell form.
fn exec_form(arguments: &str, keyword: &str) -> Vec<String> {
    serde_json::from_str(arguments)
        .unwrap_or_else(|_| panic!("{keyword} is not in exec form (a JSON array): {arguments}"))
}

fn instructions<'a>(all: &'a [Instruction], keyword: &str) -> Vec<&'a Instruction> {
    all.iter().filter(|item| item.keyword == keyword).collect()
}

fn single<'a>(all: &'a [Instruction], keyword: &str) -> &'a Instruction {
    let found = instructions(all, keyword);
    assert_eq!(found.len(), 1, "the Dockerfile needs exactly one {keyword}");
    found[0]
}

/// Returns the instructions after the last `FROM`: the runtime image.
fn runtime_stage(all: &[Instruction]) -> &[Instruction] {
    let last_from = all
        .iter()
        .rposition(|item| item.keyword == "FROM")
        .expect("the Dockerfile has a FROM");
    &all[last_from..]
}

/// Default values of the `ARG` instructions, by name.
fn arg_defaults(all: &[Instruction]) -> BTreeMap<String, String> {
    instructions(all, "ARG")
        .into_iter()
        .filter_map(|item| item.arguments.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.trim_matches('"').to_owned()))
        .collect()
}

/// Returns the image a `FROM` names, with `${NAME}` replaced by the ARG default.
fn from_image(item: &Instruction, defaults: &BTreeMap<String, String>) -> String {
    let mut words = item
        .arguments
        .split_whitespace()
        .filter(|word| !word.starts_with("--"));
    let image = words.next().expect("FROM names an image");
    match image
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
    {
        Some(name) => defaults
            .get(name)
            .unwrap_or_else(|| panic!("FROM uses ARG {name}, which has no default"))
            .clone(),
        None => image.to_owned(),
    }
}

/// Values of the `ENV` instructions, in `NAME=VALUE` form only.
fn env_values(all: &[Instruction]) -> BTreeMap<String, String> {
    instructions(all, "ENV")
        .into_iter()
        .flat_map(|item| item.arguments.split_whitespace())
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

#[test]
fn dockerfile_follows_image_rules() {
    let all = dockerfile();
    let defaults = arg_defaults(&all);

    let froms = instructions(&all, "FROM");
    assert!(froms.len() >= 2, "the Dockerfile must be multi-stage");
    for item in &froms {
        let image = from_image(item, &defaults);
        let tag = image.rsplit_once(':').map(|(_, tag)| tag);
        assert!(
            tag.is_some_and(|tag| !tag.contains('/')),
            "image {image} has no tag"
        );
        assert_ne!(tag, Some("latest"), "image {image} uses the latest tag");
    }

    let runtime = runtime_stage(&all);
    let user = single(runtime, "USER").arguments.clone();
    let uid = user.split(':').next().unwrap();
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("USER {user} is not numeric, so runAsNonRoot cannot check it"));
    assert_ne!(uid, 0, "the runtime image runs as root");

    for item in instructions(runtime, "COPY")
        .into_iter()
        .chain(instructions(runtime, "ADD"))
    {
        assert!(
            item.keyword == "COPY" && item.arguments.starts_with("--from=builder "),
            "the runtime stage copies from outside the builder: {} {}",
            item.keyword,
            item.arguments
        );
    }
    let copies: Vec<&str> = instructions(runtime, "COPY")
        .iter()
        .map(|item| item.arguments.as_str())
        .collect();
    assert_eq!(
        copies,
        [
            "--from=builder /out/serve /usr/local/bin/serve",
            "--from=builder /out/cifaas/ /opt/cifaas/"
        ],
        "the runtime stage must copy only the binary and the optional checkpoint"
    );

    let builder_copies: Vec<&str> = instructions(&all[..all.len() - runtime.len()], "COPY")
        .iter()
        .map(|item| item.arguments.as_str())
        .collect();
    assert!(
        builder_copies.contains(&".cargo/config.toml .cargo/config.toml"),
        "the builder must copy .cargo/config.toml for the CPU baseline: {builder_copies:?}"
    );
    assert_eq!(
        defaults.get("CHECKPOINT").map(String::as_str),
        Some(""),
        "CHECKPOINT must default to no checkpoint"
    );

    let entrypoint = exec_form(&single(runtime, "ENTRYPOINT").arguments, "ENTRYPOINT");
    assert_eq!(entrypoint, ["/usr/local/bin/serve"]);
    let healthcheck = &single(runtime, "HEALTHCHECK").arguments;
    let (_, command) = healthcheck
        .split_once("CMD ")
        .expect("HEALTHCHECK runs a command");
    assert_eq!(
        exec_form(command, "HEALTHCHECK CMD"),
        ["/usr/local/bin/serve", "healthcheck"]
    );
    exec_form(&single(runtime, "CMD").arguments, "CMD");
}

#[test]
fn dockerfile_port_is_function_default() {
    let all = dockerfile();
    let runtime = runtime_stage(&all);
    let exposed: u16 = single(runtime, "EXPOSE")
        .arguments
        .trim_end_matches("/tcp")
        .parse()
        .expect("EXPOSE names one port");
    let port_variable = env_values(runtime).get("port").cloned();
    let bound = cifaas_serve::resolve_bind(None, Mode::Function, port_variable).unwrap();
    assert_eq!(bound.port(), exposed, "serve listens on another port");
    assert_eq!(
        bound.port(),
        8080,
        "OpenFaaS sends traffic to port 8080 of a function"
    );
}

#[test]
fn hadolint_accepts_dockerfile() {
    let Ok(output) = Command::new("hadolint")
        .arg(repo_root().join("Dockerfile"))
        .output()
    else {
        println!("skipped: hadolint is not installed; deploy/check-dockerfile.sh installs it");
        return;
    };
    assert!(
        output.status.success(),
        "hadolint rejected the Dockerfile:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------
// serve healthcheck

#[test]
fn healthcheck_listed_in_help() {
    let (status, stdout, _) = run_binary(SERVE, &["--help"]);
    assert!(status.success());
    let commands = stdout
        .split("Commands:")
        .nth(1)
        .expect("serve --help lists commands");
    assert!(
        commands
            .lines()
            .any(|line| line.trim_start().starts_with("healthcheck ")),
        "{stdout}"
    );
}

#[test]
fn healthcheck_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("ready.lock");
    let lock_arg = lock.to_str().unwrap();

    let (status, _, stderr) = run_binary(SERVE, &["healthcheck", "--lock-file", lock_arg]);
    assert_eq!(status.code(), Some(1), "absent lock file: {stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");

    std::fs::write(&lock, b"").unwrap();
    let (status, _, stderr) = run_binary(SERVE, &["healthcheck", "--lock-file", lock_arg]);
    assert_eq!(status.code(), Some(0), "present lock file: {stderr}");

    let folder = dir.path().to_str().unwrap();
    let (status, _, stderr) = run_binary(SERVE, &["healthcheck", "--lock-file", folder]);
    assert_eq!(status.code(), Some(1), "folder as lock file: {stderr}");

    let (status, _, stderr) = run_binary(SERVE, &["healthcheck", "--bogus"]);
    assert_eq!(status.code(), Some(2), "unknown option: {stderr}");
}

fn healthcheck_code(lock: &Path) -> Option<i32> {
    let (status, _, _) = run_binary(
        SERVE,
        &["healthcheck", "--lock-file", lock.to_str().unwrap()],
    );
    status.code()
}

// ---------------------------------------------------------------------------
// Running the binary as each file configures it

/// Rewrites deployment arguments for a test run: `--bind` to
/// 127.0.0.1:0, `--model` to the synthetic checkpoint and `--lock-file`
/// into the temporary folder, adding the last two when missing.
fn test_args(args: &[String], files: &Files) -> Vec<String> {
    let mut rewritten = Vec::new();
    let mut has_bind = false;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let replacement = match word.as_str() {
            "--bind" => {
                has_bind = true;
                "127.0.0.1:0".to_owned()
            }
            "--model" => files.checkpoint.to_str().unwrap().to_owned(),
            "--lock-file" => files.lock.to_str().unwrap().to_owned(),
            _ => {
                rewritten.push(word.clone());
                continue;
            }
        };
        words.next().expect("the option has a value");
        rewritten.push(word.clone());
        rewritten.push(replacement);
    }
    if !has_bind {
        rewritten.extend(["--bind".to_owned(), "127.0.0.1:0".to_owned()]);
    }
    if !args.iter().any(|word| word == "--lock-file") {
        rewritten.push("--lock-file".to_owned());
        rewritten.push(files.lock.to_str().unwrap().to_owned());
    }
    rewritten
}

fn option_value<'a>(args: &'a [String], option: &str) -> Option<&'a str> {
    let index = args.iter().position(|word| word == option)?;
    args.get(index + 1).map(String::as_str)
}

fn start(args: &[String], env: &BTreeMap<String, String>) -> Serve {
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    Serve::start_with_env(args, &env)
}

fn assert_probes_return_200(serve: &Serve, paths: &[&str]) {
    serve.wait_until_ready();
    for path in paths {
        let response = get(serve.addr(), path);
        assert_eq!(response.status, 200, "GET {path}:\n{}", serve.log());
    }
}

/// Parses a Kubernetes CPU quantity (`2`, `"2"`, `2000m`) into millicores.
fn millicores(value: &Value) -> u64 {
    let text = match value {
        Value::Number(number) => number.to_string(),
        _ => string_at(value, "cpu").to_owned(),
    };
    match text.strip_suffix('m') {
        Some(milli) => milli.parse().expect("integer millicores"),
        None => (text.parse::<f64>().expect("a CPU count") * 1000.0).round() as u64,
    }
}

/// Parses a Kubernetes memory quantity (`4Gi`, `4096Mi`, `4G`) into bytes.
fn memory_bytes(value: &Value) -> u64 {
    let text = string_at(value, "memory");
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("K", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(count) = text.strip_suffix(suffix) {
            return count.parse::<u64>().expect("an integer memory count") * factor;
        }
    }
    text.parse().expect("a memory count in bytes")
}

const TWO_CPUS: u64 = 2000;
const FOUR_GIB: u64 = 4 << 30;

// ---------------------------------------------------------------------------
// OpenFaaS

fn stack_function() -> Value {
    let stack = read_yaml("deploy/openfaas/stack.yml");
    assert_eq!(stack["provider"]["name"], "openfaas");
    let functions = stack["functions"]
        .as_mapping()
        .expect("stack.yml has functions");
    assert_eq!(functions.len(), 1, "stack.yml declares one function");
    functions.values().next().unwrap().clone()
}

fn stack_environment(function: &Value) -> BTreeMap<String, String> {
    let environment = function["environment"]
        .as_mapping()
        .expect("the function has an environment");
    environment
        .iter()
        .map(|(name, value)| {
            let name = string_at(name, "environment name").to_owned();
            (name.clone(), string_at(value, &name).to_owned())
        })
        .collect()
}

#[test]
fn stack_yml_describes_image() {
    let function = stack_function();
    assert_eq!(function["lang"], "dockerfile");
    let handler = string_at(&function["handler"], "handler");
    assert!(
        repo_root().join(handler).join("Dockerfile").is_file(),
        "handler {handler}, taken from the repository root, has no Dockerfile"
    );
    let image = string_at(&function["image"], "image");
    assert!(
        image.starts_with("${CIFAAS_IMAGE:-") && image.ends_with('}'),
        "image {image} is not the CIFAAS_IMAGE placeholder"
    );
    assert_eq!(function["readonly_root_filesystem"], true);

    let labels = &function["labels"];
    for label in [
        "com.openfaas.scale.min",
        "com.openfaas.scale.max",
        "com.openfaas.scale.zero",
    ] {
        assert!(
            labels[label].is_string(),
            "label {label} missing or not a string"
        );
    }
    let min: u32 = string_at(&labels["com.openfaas.scale.min"], "min")
        .parse()
        .unwrap();
    let max: u32 = string_at(&labels["com.openfaas.scale.max"], "max")
        .parse()
        .unwrap();
    assert!(1 <= min, "scale min {min}");
    assert!(min <= max, "scale min {min} and max {max}");

    for section in ["limits", "requests"] {
        assert_eq!(
            millicores(&function[section]["cpu"]),
            TWO_CPUS,
            "{section}.cpu"
        );
        assert_eq!(
            memory_bytes(&function[section]["memory"]),
            FOUR_GIB,
            "{section}.memory"
        );
    }

    let annotations = &function["annotations"];
    let health = string_at(&annotations["com.openfaas.health.http.path"], "health path");
    let ready = string_at(&annotations["com.openfaas.ready.http.path"], "ready path");
    assert_eq!([health, ready], OPENFAAS_PROBE_PATHS);

    let environment = stack_environment(&function);
    let mut durations = BTreeMap::new();
    for name in [
        "read_timeout",
        "write_timeout",
        "exec_timeout",
        "healthcheck_interval",
    ] {
        let value = environment
            .get(name)
            .unwrap_or_else(|| panic!("environment {name} missing"));
        let duration = parse_go_duration(value).unwrap_or_else(|error| panic!("{name}: {error}"));
        durations.insert(name, duration);
    }
    // Kubernetes' default grace period, which OpenFaaS Community Edition keeps.
    let shutdown = durations["healthcheck_interval"] + durations["write_timeout"];
    assert!(
        shutdown < Duration::from_secs(30),
        "healthcheck_interval plus write_timeout is {shutdown:?}, not within a 30 s grace period"
    );

    let checkpoint = string_at(&function["build_args"]["CHECKPOINT"], "CHECKPOINT");
    let ignore = read_text(".dockerignore");
    assert!(
        checkpoint.ends_with(".ckpt") && !checkpoint.contains('/') && ignore.contains("!*.ckpt"),
        "CHECKPOINT {checkpoint} is left out of the build context by .dockerignore"
    );
}

#[test]
fn function_image_serves_probes() {
    let all = dockerfile();
    let runtime = runtime_stage(&all);
    let command = exec_form(&single(runtime, "CMD").arguments, "CMD");
    assert_eq!(option_value(&command, "--mode"), Some("function"));
    let function = stack_function();
    let threads: u64 = option_value(&command, "--threads")
        .expect("CMD sets --threads")
        .parse()
        .unwrap();
    assert_eq!(threads * 1000, millicores(&function["limits"]["cpu"]));

    let mut environment = env_values(runtime);
    environment.extend(stack_environment(&function));
    environment.remove("port");
    let files = Files::new(20, 3);
    let mut serve = start(&test_args(&command, &files), &environment);
    assert_probes_return_200(&serve, &OPENFAAS_PROBE_PATHS);
    assert_eq!(healthcheck_code(&files.lock), Some(0), "{}", serve.log());

    serve.terminate();
    let status = serve.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{}", serve.log());
    assert_eq!(
        healthcheck_code(&files.lock),
        Some(1),
        "lock file left after SIGTERM"
    );
}

// ---------------------------------------------------------------------------
// Kubernetes

fn deployment_container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("the Deployment has containers");
    assert_eq!(containers.len(), 1, "the pod has one container");
    &containers[0]
}

fn strings(value: &Value, field: &str) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("{field} is not a list"))
        .iter()
        .map(|item| string_at(item, field).to_owned())
        .collect()
}

/// Resolves a probe or Service port, a number or a container port name.
fn resolve_port(port: &Value, container: &Value) -> u64 {
    if let Some(number) = port.as_u64() {
        return number;
    }
    let name = string_at(port, "port");
    container["ports"]
        .as_sequence()
        .expect("the container has ports")
        .iter()
        .find(|entry| entry["name"] == name)
        .and_then(|entry| entry["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port is named {name}"))
}

fn container_env(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_sequence()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| {
                    let name = string_at(&entry["name"], "env name").to_owned();
                    (name.clone(), string_at(&entry["value"], &name).to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn deployment_matches_server() {
    let deployment = read_yaml("deploy/kubernetes/deployment.yaml");
    assert_eq!(deployment["apiVersion"], "apps/v1");
    assert_eq!(deployment["kind"], "Deployment");
    let container = deployment_container(&deployment);
    let args = strings(&container["args"], "args");
    assert_eq!(option_value(&args, "--mode"), Some("server"));

    let bind: SocketAddr = option_value(&args, "--bind")
        .expect("server mode in a pod needs --bind")
        .parse()
        .expect("--bind is IP:PORT");
    assert!(
        bind.ip().is_unspecified(),
        "--bind {bind} is unreachable from outside the pod"
    );
    let ports = container["ports"].as_sequence().expect("container ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(
        ports[0]["containerPort"].as_u64(),
        Some(u64::from(bind.port()))
    );

    let resources = &container["resources"];
    assert_eq!(millicores(&resources["limits"]["cpu"]), TWO_CPUS);
    assert_eq!(memory_bytes(&resources["limits"]["memory"]), FOUR_GIB);
    let threads: u64 = option_value(&args, "--threads")
        .expect("--threads")
        .parse()
        .unwrap();
    assert_eq!(
        threads * 1000,
        TWO_CPUS,
        "--threads differs from the CPU limit"
    );

    let environment = container_env(container);
    let drain = environment
        .get("write_timeout")
        .map(|value| parse_go_duration(value).unwrap())
        .unwrap_or(cifaas_serve::watchdog::DEFAULT_TIMEOUT);
    let pre_stop = strings(
        &container["lifecycle"]["preStop"]["exec"]["command"],
        "preStop command",
    );
    let pre_stop_seconds: u64 = match pre_stop.as_slice() {
        [sleep, seconds] if sleep == "sleep" => seconds.parse().unwrap(),
        other => panic!("preStop is not `sleep N`: {other:?}"),
    };
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        Duration::from_secs(grace) > drain + Duration::from_secs(pre_stop_seconds),
        "grace {grace} s is not longer than preStop {pre_stop_seconds} s plus drain {drain:?}"
    );

    let pod_security = &deployment["spec"]["template"]["spec"]["securityContext"];
    let all = dockerfile();
    let user = single(runtime_stage(&all), "USER").arguments.clone();
    let uid = user.split(':').next().unwrap();
    assert_eq!(pod_security["runAsNonRoot"], true);
    assert_eq!(
        pod_security["runAsUser"].as_u64().map(|id| id.to_string()),
        Some(uid.into())
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let mounts = container["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts");
    assert!(
        mounts.iter().any(|mount| mount["mountPath"] == "/tmp"),
        "/tmp is not writable"
    );

    let mut probe_paths = Vec::new();
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let get = &container[probe]["httpGet"];
        let path = string_at(&get["path"], probe).to_owned();
        assert_eq!(
            resolve_port(&get["port"], container),
            u64::from(bind.port()),
            "{probe}"
        );
        probe_paths.push(path);
    }
    assert_eq!(probe_paths[1], "/_/ready");
    assert_eq!(probe_paths[2], "/_/health");

    let files = Files::new(20, 4);
    let serve = start(&test_args(&args, &files), &environment);
    let paths: Vec<&str> = probe_paths.iter().map(String::as_str).collect();
    assert_probes_return_200(&serve, &paths);
}

#[test]
fn service_and_hpa_target_deployment() {
    let deployment = read_yaml("deploy/kubernetes/deployment.yaml");
    let name = &deployment["metadata"]["name"];
    let pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        .as_mapping()
        .expect("pod labels");
    let container = deployment_container(&deployment);

    let service = read_yaml("deploy/kubernetes/service.yaml");
    assert_eq!(service["kind"], "Service");
    let selector = service["spec"]["selector"].as_mapping().expect("selector");
    for (key, value) in selector {
        assert_eq!(
            pod_labels.get(key),
            Some(value),
            "selector {key:?} misses the pods"
        );
    }
    for port in service["spec"]["ports"]
        .as_sequence()
        .expect("service ports")
    {
        let target = resolve_port(&port["targetPort"], container);
        assert_eq!(
            Some(target),
            container["ports"][0]["containerPort"].as_u64()
        );
    }

    let hpa = read_yaml("deploy/kubernetes/hpa.yaml");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["kind"], "HorizontalPodAutoscaler");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(&hpa["spec"]["scaleTargetRef"]["name"], name);
    let min = hpa["spec"]["minReplicas"].as_u64().expect("minReplicas");
    let max = hpa["spec"]["maxReplicas"].as_u64().expect("maxReplicas");
    assert!(1 <= min, "replicas min {min}");
    assert!(min < max, "replicas {min} to {max}");
    let metric = &hpa["spec"]["metrics"][0];
    assert_eq!(metric["resource"]["name"], "cpu");
    assert_eq!(metric["resource"]["target"]["type"], "Utilization");
}

// ---------------------------------------------------------------------------
// systemd

/// The `[Service]` settings of the unit, each name with all its values.
fn service_settings(unit: &str) -> BTreeMap<String, Vec<String>> {
    let mut settings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_service = false;
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service && !line.starts_with('#') {
            if let Some((name, value)) = line.split_once('=') {
                settings.entry(name.into()).or_default().push(value.into());
            }
        }
    }
    settings
}

fn setting<'a>(settings: &'a BTreeMap<String, Vec<String>>, name: &str) -> &'a str {
    match settings.get(name).map(Vec::as_slice) {
        Some([value]) => value,
        other => panic!("{name} must be set once, found {other:?}"),
    }
}

#[test]
fn systemd_unit_limits_and_hardening() {
    let unit = read_text("deploy/systemd/cifaas.service");
    let settings = service_settings(&unit);
    let expected = [
        ("CPUQuota", "200%"),
        ("AllowedCPUs", "0-1"),
        ("MemoryMax", "4G"),
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("StateDirectory", "cifaas"),
        ("KillSignal", "SIGTERM"),
        ("Restart", "on-failure"),
    ];
    for (name, value) in expected {
        assert_eq!(setting(&settings, name), value, "{name}");
    }

    let environment: BTreeMap<String, String> = settings["Environment"]
        .iter()
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let drain = parse_go_duration(&environment["write_timeout"]).unwrap();
    let stop = setting(&settings, "TimeoutStopSec");
    let stop = parse_go_duration(stop).unwrap_or_else(|error| panic!("TimeoutStopSec: {error}"));
    assert!(
        stop > drain,
        "TimeoutStopSec {stop:?} is not longer than the drain {drain:?}"
    );

    let exec_start: Vec<String> = setting(&settings, "ExecStart")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(exec_start[0], "/usr/local/bin/serve");
    let args = &exec_start[1..];
    assert_eq!(option_value(args, "--mode"), Some("server"));
    assert_eq!(option_value(args, "--threads"), Some("2"));
    let model = option_value(args, "--model").expect("ExecStart loads a checkpoint");
    assert!(
        model.starts_with("%S/cifaas/"),
        "--model {model} is outside StateDirectory"
    );

    let files = Files::new(20, 5);
    let serve = start(&test_args(args, &files), &environment);
    assert_probes_return_200(&serve, &OPENFAAS_PROBE_PATHS);
}

#[test]
fn systemd_analyze_verifies_unit() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        println!("skipped: /usr/bin/systemd-analyze is not installed");
        return;
    }
    // verify requires the ExecStart binary to exist, so the copy names the built one.
    let unit = read_text("deploy/systemd/cifaas.service").replace(
        "ExecStart=/usr/local/bin/serve ",
        &format!("ExecStart={SERVE} "),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cifaas.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        !stderr.contains("cifaas.service"),
        "systemd-analyze warned:\n{stderr}"
    );
}
