//! `rehearse serve`: the finance and reporting services as a small HTTP
//! JSON API over the repository layer, as the real services would run
//! after the rollout. Each instance has its own pools; the mode of every
//! call follows `USE_PARTITIONED_TABLES` and its rollout exactly as the
//! repository does in-process, so the flag can flip under load.
//!
//! The HTTP server is hyper 1 (HTTP/1.1 with keep-alive), the stack that
//! Goose's reqwest already builds on: the build carries one HTTP stack.
//!
//! Endpoints ([`routes`] lists them): reads under `/orgs/{id}/...` and
//! `/portfolio` answer what `rehearse query --json` answers; writes under
//! `/orgs/{id}/entries`, `/orgs/{id}/batches` and `/entries/{kind}/{id}`.
//! Entries are partitioned by organization, so a change to one names it
//! (`?org=ID`): the service never scans every partition for an id.
//!
//! Statuses: 400 with a message for bad input, 404 for an unknown
//! organization, entry or route, 405 for a wrong method, 409 for a write
//! that kept conflicting, 503 when the estate does not answer, 504 when a
//! call outlives the request timeout, 500 for anything else. `/healthz`
//! answers while the process runs; `/readyz` only while the primary
//! answers; `/metrics` is Prometheus text.

mod api;

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::day::Day;
use crate::error::{Error, Result};
use crate::estate::Estate;
use crate::repo::{Pooling, Repo, RepoConfig};

pub use api::routes;

/// The largest request body read (a batch of 500 entries is about 100 KiB).
const MAX_BODY: usize = 1 << 20;

/// What `rehearse serve` was asked.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub pool: Pooling,
    /// Connections per target of this instance.
    pub pool_size: usize,
    pub cache: bool,
    /// A call that takes longer is answered 504 (and the statement cancelled).
    pub timeout: Duration,
}

type Labels = Vec<(&'static str, String)>;

/// The service's own metrics: requests by route, method and status, and
/// their durations; the repository's counters come from [`crate::metrics::Metrics`].
struct ServiceMetrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram>,
    repo: crate::metrics::Metrics,
}

impl ServiceMetrics {
    fn new() -> ServiceMetrics {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "rehearse_http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        let duration = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(crate::metrics::BASE_BUCKETS.iter().copied())
        });
        registry.register(
            "rehearse_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route",
            duration.clone(),
        );
        ServiceMetrics {
            registry,
            requests,
            duration,
            repo: crate::metrics::Metrics::new([]),
        }
    }
}

/// One instance's state, shared by every connection.
pub struct App {
    repo: Repo,
    /// The seeded dataset's last day: what reports end on by default.
    as_of: Day,
    /// Organizations in the seeded dataset (0 when none was recorded).
    organizations: u64,
    /// Organizations seen to exist: asked of the primary once each.
    known: Mutex<HashSet<i64>>,
    metrics: ServiceMetrics,
    timeout: Duration,
    pool: Pooling,
    cache: bool,
}

/// A running service: its address, and a way to stop it.
pub struct Serving {
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    /// Stop accepting, let requests in flight finish (5 s at most).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(6), self.task).await;
    }
}

impl App {
    /// Connect to the estate and read the seeded dataset's extent.
    pub async fn connect(estate: &Estate, opts: &ServeOptions) -> Result<Arc<App>> {
        let mut cfg = RepoConfig::from_estate(estate, opts.pool)?;
        cfg.pool_size = opts.pool_size.max(1);
        cfg.statement_timeout = Some(opts.timeout);
        if !opts.cache {
            cfg.redis_url = None;
        }
        let client = crate::db::connect(&estate.primary.url).await?;
        let record = crate::seed::read_record(&client).await?;
        drop(client);
        let (as_of, organizations) = match record {
            Some(r) => (r.params.end_date, r.params.orgs),
            None => (crate::query::today(), 0),
        };
        let repo = Repo::connect(cfg).await?;
        Ok(Arc::new(App {
            repo,
            as_of,
            organizations,
            known: Mutex::new(HashSet::new()),
            metrics: ServiceMetrics::new(),
            timeout: opts.timeout,
            pool: opts.pool,
            cache: opts.cache,
        }))
    }

    /// Listen on `addr` and serve until [`Serving::stop`].
    pub async fn listen(self: Arc<App>, addr: SocketAddr) -> Result<Serving> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Error::Usage(format!(
                "cannot listen on {addr}: {e}; choose another --addr (port 0 picks a free one)"
            ))
        })?;
        let addr = listener.local_addr().map_err(|e| {
            Error::Lab(format!(
                "the address the service listens on is unknown: {e}"
            ))
        })?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stopped.changed() => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let app = self.clone();
                let mut stopping = stopped.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(app.handle(req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stopping.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
                while conns.try_join_next().is_some() {}
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while conns.join_next().await.is_some() {}
            })
            .await;
        });
        Ok(Serving { addr, stop, task })
    }

    /// One request: route it, time it, count it.
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let route = api::Route::parse(&path);
        let template = route.as_ref().map_or("unknown", |r| r.template());
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) => Err(Reply::error(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read (at most {MAX_BODY} bytes): {e}"),
            )),
        };
        let reply = match (route, body) {
            (_, Err(r)) => r,
            (None, _) => Reply::error(
                StatusCode::NOT_FOUND,
                format!("no route {path}; the API has {}", routes().join(", ")),
            ),
            (Some(route), Ok(body)) => {
                match tokio::time::timeout(self.timeout, self.route(&route, &method, &query, &body))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Reply::error(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "{method} {path} took longer than the service's timeout of {:?}",
                            self.timeout
                        ),
                    ),
                }
            }
        };
        let labels = vec![
            ("route", template.to_string()),
            ("method", method.to_string()),
            ("status", reply.status.as_u16().to_string()),
        ];
        self.metrics.requests.get_or_create(&labels).inc();
        self.metrics
            .duration
            .get_or_create(&vec![("route", template.to_string())])
            .observe(started.elapsed().as_secs_f64());
        reply.into_response()
    }

    /// The Prometheus exposition of this instance.
    async fn render_metrics(&self) -> String {
        let partitioned = self.repo.mode().await == crate::schema::Mode::Partitioned;
        self.metrics
            .repo
            .repo("serve", &self.repo.stats(), partitioned);
        let mut s = String::new();
        encode(&mut s, &self.metrics.registry).expect("writing to a String");
        let mut out = crate::metrics::prometheus_text(&s);
        out.push_str(&self.metrics.repo.render());
        out
    }

    /// Whether `org` exists: asked of the primary until it was once seen.
    async fn check_org(&self, org: i64) -> Result<()> {
        if self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&org)
        {
            return Ok(());
        }
        if self.repo.reporting().organization_exists(org).await? {
            self.known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(org);
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "organization {org} does not exist"
            )))
        }
    }
}

/// A status and a JSON (or text) body.
pub(crate) struct Reply {
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
    allow: Option<String>,
}

impl Reply {
    fn json(status: StatusCode, v: &impl serde::Serialize) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec(v).expect("replies serialize"),
            content_type: "application/json",
            allow: None,
        }
    }

    fn text(status: StatusCode, body: String, content_type: &'static str) -> Reply {
        Reply {
            status,
            body: body.into_bytes(),
            content_type,
            allow: None,
        }
    }

    fn error(status: StatusCode, message: String) -> Reply {
        Reply::json(
            status,
            &serde_json::json!({"error": message, "status": status.as_u16()}),
        )
    }

    fn of(e: &Error) -> Reply {
        Reply::error(status_of(e), e.to_string())
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut b = Response::builder()
            .status(self.status)
            .header("content-type", self.content_type);
        if let Some(a) = self.allow {
            b = b.header("allow", a);
        }
        b.body(Full::new(Bytes::from(self.body)))
            .expect("a response of a status and a body builds")
    }
}

/// The HTTP status of a failed call.
pub fn status_of(e: &Error) -> StatusCode {
    if crate::repo::conn::is_connection_error(e) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match e {
        Error::Usage(_) => StatusCode::BAD_REQUEST,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Refused(_) => StatusCode::CONFLICT,
        Error::Redis { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Db { source, .. } => match source.code().map(|c| c.code()) {
            // Data exceptions and integrity violations: the input was wrong.
            Some(c) if c.starts_with("22") || c.starts_with("23") => StatusCode::BAD_REQUEST,
            // Serialization failure or deadlock after every retry.
            Some("40001") | Some("40P01") => StatusCode::CONFLICT,
            // Statement timeout: the call outlived the service's timeout.
            Some("57014") => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Run `rehearse serve` until SIGINT or SIGTERM; `ready` is told the address.
pub async fn serve(estate: &Estate, opts: &ServeOptions) -> Result<()> {
    let app = App::connect(estate, opts).await?;
    let mode = app.repo.mode().await;
    let primary = app.repo.primary_url().to_string();
    let (pool, cache, organizations) = (app.pool, app.cache, app.organizations);
    let serving = app.listen(opts.addr).await?;
    println!(
        "rehearse serve: listening on http://{} (primary {primary}, pool {}, cache {}, {} organizations; \
         mode follows {}: {mode} now)",
        serving.addr,
        match pool {
            Pooling::Direct => "direct",
            Pooling::PgBouncer => "pgbouncer",
        },
        if cache { "on" } else { "off" },
        organizations,
        crate::repo::routing::FLAG,
    );
    use std::io::Write;
    std::io::stdout().flush().ok();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::Lab(format!("cannot watch for SIGTERM: {e}")))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("rehearse serve: stopping (requests in flight get 5 s)");
    serving.stop().await;
    Ok(())
}

impl App {
    async fn route(&self, route: &api::Route, method: &Method, query: &str, body: &[u8]) -> Reply {
        if let Some(allowed) = route.allows(method) {
            let mut r = Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} takes {allowed}, not {method}", route.template()),
            );
            r.allow = Some(allowed.to_string());
            return r;
        }
        match api::call(self, route, method, query, body).await {
            Ok(r) => r,
            Err(e) => Reply::of(&e),
        }
    }
}
