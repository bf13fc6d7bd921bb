//! Keeps a client that sends a request body it never finishes from holding a connection.
//!
//! When a handler answers without reading the whole body — a 401, 404 or 405, a route that takes
//! no body, a 413, or the 408 of [`crate::routes::BODY_TIMEOUT`] — actix-http goes on reading and
//! discarding a chunked body until it ends, with no timeout, so a client trickling chunks would
//! keep the connection forever. [`close_on_unread_body`] holds the request's body until the answer
//! has been written; actix-http then sees it unread and closes the connection instead.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_util::Stream;

/// The middleware: the handler reads the body through a shared handle, and the answer keeps the
/// body alive until it is sent. (Handlers' errors reach it as answers; the inner middleware
/// answers rather than failing, so that its refusals keep the body too.)
pub async fn close_on_unread_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let body = Rc::new(RefCell::new(req.take_payload()));
    req.set_payload(Payload::Stream {
        payload: Box::pin(SharedBody(Rc::clone(&body))),
    });
    let response = next.call(req).await?.map_into_boxed_body();
    Ok(response.map_body(|_, answer| HoldBody { answer, body }))
}

/// The request body, read through the handle the middleware shares.
struct SharedBody(Rc<RefCell<Payload>>);

impl Stream for SharedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_next(cx)
    }
}

/// An answer's body that keeps the request body alive until it has been written.
struct HoldBody {
    answer: BoxBody,
    #[allow(dead_code)] // held, never read: dropping it is what must wait
    body: Rc<RefCell<Payload>>,
}

impl MessageBody for HoldBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.answer.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().answer).poll_next(cx)
    }
}
