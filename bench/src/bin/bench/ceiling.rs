//! The ceiling: a parse-only actix-web server in this process, what HTTP and JSON alone cost.

use std::io;
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use actix_web::http::KeepAlive;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::Value;

use crate::http::Base;
use crate::ours::ServerFlags;
use crate::KEEP_ALIVE_SECONDS;

pub(crate) struct Ceiling {
    pub(crate) base: Base,
    pub(crate) handle: actix_web::dev::ServerHandle,
    pub(crate) thread: thread::JoinHandle<io::Result<()>>,
}

/// Parses the body as our `POST /metrics/` does (JSON into a value), and answers 201 with it.
async fn parse_only(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<Value>(&body) {
        Ok(value) => HttpResponse::Created()
            .content_type("application/json")
            .body(value.to_string()),
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

impl Ceiling {
    pub(crate) fn start(flags: &ServerFlags) -> Result<Ceiling, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| err.to_string())?;
        let address = listener.local_addr().map_err(|err| err.to_string())?;
        let keep_alive = if flags.keep_alive {
            KeepAlive::Timeout(Duration::from_secs(KEEP_ALIVE_SECONDS))
        } else {
            KeepAlive::Disabled
        };
        let workers = flags.workers;
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(|| {
                    App::new().route("/api/v1/metrics/", web::post().to(parse_only))
                })
                .workers(workers)
                .keep_alive(keep_alive)
                .listen(listener)?
                .run();
                let _ = tx.send(server.handle());
                server.await
            })
        });
        let handle = rx
            .recv()
            .map_err(|_| "the ceiling server failed to start".to_owned())?;
        Ok(Ceiling {
            base: Base::parse(&format!("http://{address}/api/v1"))?,
            handle,
            thread,
        })
    }

    pub(crate) fn stop(self) {
        // The stop command is sent at once; the returned future only waits for it.
        drop(self.handle.stop(false));
        let _ = self.thread.join();
    }
}
