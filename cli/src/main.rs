//! `widedeep`: train from a TOML experiment file, evaluate, predict, explain, report, serve.
//! Run `widedeep --help` for the commands.
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use widedeep_cli::{loadtest, predict, report, serve, train, CliError, Result};

fn path_arg(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("PATH")
        .value_parser(clap::value_parser!(PathBuf))
        .help(help)
}

fn device_arg() -> Arg {
    Arg::new("device")
        .long("device")
        .default_value("auto")
        .help("auto, cpu, cuda or cuda:N")
}

fn cli() -> Command {
    Command::new("widedeep")
        .about("Wide-and-deep models on tabular, text and image data: train, evaluate, predict, explain, serve")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("train")
                .about("Train the experiment of a TOML file; writes a run directory")
                .arg(path_arg("config", "the experiment file").required(true))
                .arg(path_arg("output", "the run directory (default runs/<config name>)"))
                .arg(
                    Arg::new("set")
                        .long("set")
                        .value_name("KEY=VALUE")
                        .action(ArgAction::Append)
                        .help("override a setting of the file, e.g. training.epochs=1 (repeatable)"),
                ),
        )
        .subcommand(
            Command::new("evaluate")
                .about("Loss and metrics of a saved pipeline on labelled data, as JSON")
                .arg(path_arg("pipeline", "the pipeline directory").required(true))
                .arg(path_arg("data", "Parquet or CSV rows with the target").required(true))
                .arg(path_arg("output", "write the JSON here instead of stdout"))
                .arg(device_arg()),
        )
        .subcommand(
            Command::new("predict")
                .about("Predictions of a saved pipeline, written as Parquet")
                .arg(path_arg("pipeline", "the pipeline directory").required(true))
                .arg(path_arg("data", "Parquet or CSV rows").required(true))
                .arg(path_arg("output", "the Parquet file to write").required(true))
                .arg(
                    Arg::new("keep")
                        .long("keep")
                        .value_name("COLUMN")
                        .action(ArgAction::Append)
                        .help("an input column copied to the output (repeatable)"),
                )
                .arg(
                    Arg::new("overwrite")
                        .long("overwrite")
                        .action(ArgAction::SetTrue)
                        .help("replace an existing output file"),
                )
                .arg(device_arg()),
        )
        .subcommand(
            Command::new("explain")
                .about("Attributions of a saved pipeline's predictions, with plots")
                .arg(path_arg("pipeline", "the pipeline directory").required(true))
                .arg(path_arg("data", "Parquet or CSV rows to explain").required(true))
                .arg(path_arg("plots", "the folder for the JSON and PNG files").required(true))
                .arg(path_arg("background", "background rows (default: a sample of --data)"))
                .arg(
                    Arg::new("method")
                        .long("method")
                        .default_value("gradient_shap")
                        .help("gradient_shap, integrated_gradients, kernel_shap or permutation"),
                )
                .arg(
                    Arg::new("rows")
                        .long("rows")
                        .value_parser(clap::value_parser!(usize))
                        .default_value("500")
                        .help("the most rows explained"),
                )
                .arg(device_arg()),
        )
        .subcommand(
            Command::new("report")
                .about("A self-contained HTML page about a training run (curves, charts, attributions)")
                .arg(path_arg("run", "the run directory written by `train`").required(true))
                .arg(path_arg("output", "the HTML file (default RUN/report.html)")),
        )
        .subcommand(
            Command::new("load-test")
                .about("Concurrent keep-alive clients posting one JSON body; requests/s, p50/p99, errors")
                .arg(
                    Arg::new("addr")
                        .long("addr")
                        .default_value("127.0.0.1:8080")
                        .value_parser(clap::value_parser!(std::net::SocketAddr))
                        .help("the server"),
                )
                .arg(Arg::new("path").long("path").default_value("/predict"))
                .arg(path_arg("body", "a file with the JSON body").required(true))
                .arg(
                    Arg::new("clients")
                        .long("clients")
                        .value_parser(clap::value_parser!(usize))
                        .default_value("64"),
                )
                .arg(
                    Arg::new("seconds")
                        .long("seconds")
                        .value_parser(clap::value_parser!(f64))
                        .default_value("20"),
                ),
        )
        .subcommand(
            Command::new("serve")
                .about("HTTP server: POST /predict, POST /explain, GET /health, GET /metadata")
                .arg(path_arg("pipeline", "the pipeline directory").required(true))
                .arg(path_arg(
                    "background",
                    "background rows for /explain (default: the run's background.parquet)",
                ))
                .arg(
                    Arg::new("host")
                        .long("host")
                        .default_value("127.0.0.1")
                        .help("address to bind"),
                )
                .arg(
                    Arg::new("port")
                        .long("port")
                        .value_parser(clap::value_parser!(u16))
                        .default_value("8080")
                        .help("port (0: any free port, printed)"),
                )
                .arg(
                    Arg::new("max-batch")
                        .long("max-batch")
                        .value_parser(clap::value_parser!(usize))
                        .default_value("1024")
                        .help("the most rows joined into one forward pass"),
                )
                .arg(
                    Arg::new("max-wait-ms")
                        .long("max-wait-ms")
                        .value_parser(clap::value_parser!(u64))
                        .default_value("2")
                        .help("how long a request waits for others to batch with"),
                )
                .arg(
                    Arg::new("body-limit")
                        .long("body-limit")
                        .value_parser(clap::value_parser!(usize))
                        .default_value("4194304")
                        .help("the largest request body in bytes"),
                )
                .arg(
                    Arg::new("threads")
                        .long("threads")
                        .value_parser(clap::value_parser!(usize))
                        .default_value("1")
                        .help("libtorch intra-op threads of the model thread"),
                )
                .arg(
                    Arg::new("allow-unseen")
                        .long("allow-unseen")
                        .action(ArgAction::SetTrue)
                        .help("accept categories not seen in training (else 422)"),
                )
                .arg(
                    Arg::new("device")
                        .long("device")
                        .default_value("cpu")
                        .help("auto, cpu, cuda or cuda:N"),
                ),
        )
}

fn path<'a>(m: &'a ArgMatches, name: &str) -> Option<&'a Path> {
    m.get_one::<PathBuf>(name).map(PathBuf::as_path)
}

fn required<'a>(m: &'a ArgMatches, name: &str) -> Result<&'a Path> {
    path(m, name).ok_or_else(|| CliError::Usage(format!("--{name} is required")))
}

fn device(m: &ArgMatches) -> Result<widedeep::tch::Device> {
    train::device_of(m.get_one::<String>("device").map_or("auto", String::as_str))
}

fn print_json(value: &impl serde::Serialize, output: Option<&Path>) -> Result<()> {
    match output {
        Some(p) => train::write_json(p, value),
        None => {
            let text =
                serde_json::to_string_pretty(value).map_err(|e| CliError::Usage(e.to_string()))?;
            println!("{text}");
            Ok(())
        }
    }
}

fn run(matches: &ArgMatches) -> Result<()> {
    match matches.subcommand() {
        Some(("train", m)) => {
            let overrides: Vec<String> = m
                .get_many::<String>("set")
                .map(|v| v.cloned().collect())
                .unwrap_or_default();
            let out = train::train(required(m, "config")?, path(m, "output"), &overrides)?;
            println!("{}", out.run_dir.display());
        }
        Some(("evaluate", m)) => {
            let p = predict::load(required(m, "pipeline")?, device(m)?)?;
            let metrics = predict::evaluate(&p, required(m, "data")?)?;
            print_json(&metrics, path(m, "output"))?;
        }
        Some(("predict", m)) => {
            let p = predict::load(required(m, "pipeline")?, device(m)?)?;
            let keep: Vec<String> = m
                .get_many::<String>("keep")
                .map(|v| v.cloned().collect())
                .unwrap_or_default();
            let output = required(m, "output")?;
            let rows = predict::predict(
                &p,
                required(m, "data")?,
                output,
                &keep,
                m.get_flag("overwrite"),
            )?;
            eprintln!("{rows} predictions written to {}", output.display());
        }
        Some(("explain", m)) => {
            let p = predict::load(required(m, "pipeline")?, device(m)?)?;
            let plots = required(m, "plots")?;
            let ranked = predict::explain(
                &p,
                required(m, "data")?,
                path(m, "background"),
                m.get_one::<String>("method")
                    .map_or("gradient_shap", String::as_str),
                *m.get_one::<usize>("rows").unwrap_or(&500),
                plots,
            )?;
            for (name, v) in ranked.iter().take(10) {
                println!("{name:<32} {v:.4}");
            }
            eprintln!("plots written to {}", plots.display());
        }
        Some(("report", m)) => {
            let r = report::report(required(m, "run")?, path(m, "output"))?;
            println!("{}", r.html.display());
        }
        Some(("load-test", m)) => {
            let body_path = required(m, "body")?;
            let body =
                std::fs::read_to_string(body_path).map_err(|e| CliError::io(body_path, e))?;
            let seconds = *m.get_one::<f64>("seconds").unwrap_or(&20.0);
            if !(seconds > 0.0 && seconds <= 3600.0) {
                return Err(CliError::Usage(format!(
                    "--seconds {seconds}: expected (0, 3600]"
                )));
            }
            let addr = *m
                .get_one::<std::net::SocketAddr>("addr")
                .ok_or_else(|| CliError::Usage("--addr is required".into()))?;
            let report = loadtest::load_test(
                addr,
                m.get_one::<String>("path")
                    .map_or("/predict", String::as_str),
                &body,
                *m.get_one::<usize>("clients").unwrap_or(&64),
                std::time::Duration::from_secs_f64(seconds),
            )?;
            print_json(&report, None)?;
        }
        Some(("serve", m)) => {
            let mut o = serve::options_from(
                required(m, "pipeline")?,
                *m.get_one::<u16>("port").unwrap_or(&8080),
                *m.get_one::<usize>("max-batch").unwrap_or(&1024),
                *m.get_one::<u64>("max-wait-ms").unwrap_or(&2),
                *m.get_one::<usize>("body-limit").unwrap_or(&(4 << 20)),
                device(m)?,
                path(m, "background"),
            );
            o.allow_unseen = m.get_flag("allow-unseen");
            o.threads = *m.get_one::<usize>("threads").unwrap_or(&1);
            if let Some(h) = m.get_one::<String>("host") {
                o.host = h.clone();
            }
            serve::serve(o)?;
        }
        _ => unreachable!("subcommand_required"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let matches = cli().get_matches();
    match run(&matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
