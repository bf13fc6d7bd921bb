//! HTTP for the bench: base URLs, requests kept as bytes and as parts, a minimal keep-alive client.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};

use crate::REQUEST_TIMEOUT;

/// `http://host:port/prefix`.
#[derive(Clone)]
pub(crate) struct Base {
    /// `host:port`, for the Host header and the messages.
    pub(crate) host: String,
    pub(crate) addr: SocketAddr,
    /// `/api/v1`, no trailing slash.
    pub(crate) prefix: String,
}

impl Base {
    pub(crate) fn parse(url: &str) -> Result<Base, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (host, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let host = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let addr = host
            .to_socket_addrs()
            .map_err(|err| format!("{url}: {err}"))?
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        Ok(Base {
            host,
            addr,
            prefix: prefix.to_owned(),
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}{path}", self.host, self.prefix)
    }
}

/// A request, kept both ways: as bytes for the built-in generator and as parts for wrk.
pub(crate) struct Request {
    pub(crate) method: &'static str,
    pub(crate) url: String,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) raw: Vec<u8>,
}

impl Request {
    pub(crate) fn get(base: &Base, path: &str) -> Request {
        let raw = format!(
            "GET {}{path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\r\n",
            base.prefix, base.host
        );
        Request {
            method: "GET",
            url: base.url(path),
            body: None,
            raw: raw.into_bytes(),
        }
    }

    pub(crate) fn post(base: &Base, path: &str, body: Vec<u8>) -> Request {
        Request::post_as(base, path, "application/json", body)
    }

    pub(crate) fn post_as(base: &Base, path: &str, content_type: &str, body: Vec<u8>) -> Request {
        let mut raw = format!(
            "POST {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n",
            base.prefix,
            base.host,
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        Request {
            method: "POST",
            url: base.url(path),
            body: Some(body),
            raw,
        }
    }
}

pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The server closes the connection after this answer.
    pub(crate) close: bool,
}

/// One connection at a time to one address, re-opened whenever the server closes it.
pub(crate) struct Client {
    pub(crate) addr: SocketAddr,
    pub(crate) stream: Option<TcpStream>,
    pub(crate) buf: Vec<u8>,
}

impl Client {
    pub(crate) fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            stream: None,
            buf: Vec::with_capacity(1 << 16),
        }
    }

    pub(crate) fn connect(&mut self) -> io::Result<()> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, REQUEST_TIMEOUT)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
            stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
            self.stream = Some(stream);
            self.buf.clear();
        }
        Ok(())
    }

    /// Sends `raw` on the open connection and reads the answer.
    pub(crate) fn exchange(&mut self, raw: &[u8]) -> io::Result<Response> {
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        let outcome = stream
            .write_all(raw)
            .and_then(|()| read_response(stream, &mut self.buf));
        if !matches!(&outcome, Ok(response) if !response.close) {
            self.stream = None;
        }
        outcome
    }

    /// Connects if needed and exchanges; a kept connection the server closed meanwhile is
    /// replaced once.
    pub(crate) fn call(&mut self, raw: &[u8]) -> io::Result<Response> {
        let reused = self.stream.is_some();
        self.connect()?;
        match self.exchange(raw) {
            Err(_) if reused => {
                self.connect()?;
                self.exchange(raw)
            }
            outcome => outcome,
        }
    }
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads more bytes into `buf`; the end of the stream is an error.
pub(crate) fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 1 << 16];
    let n = stream.read(&mut chunk)?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

pub(crate) fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads one HTTP/1.1 answer (Content-Length, chunked, or up to the end of the stream).
pub(crate) fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Response> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf)?;
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| invalid("a binary header"))?;
    let mut lines = head.split("\r\n");
    let mut status_line = lines.next().unwrap_or("").split(' ');
    let version = status_line.next().unwrap_or("");
    let status: u16 = status_line
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no status"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" if value.contains("close") => close = true,
            "connection" if value.contains("keep-alive") => close = false,
            _ => {}
        }
    }
    buf.drain(..head_end);
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if chunked {
        read_chunked(stream, buf)?
    } else if let Some(length) = length {
        while buf.len() < length {
            fill(stream, buf)?;
        }
        buf.drain(..length).collect()
    } else {
        close = true;
        loop {
            match fill(stream, buf) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(err) => return Err(err),
            }
        }
        std::mem::take(buf)
    };
    Ok(Response {
        status,
        body,
        close,
    })
}

pub(crate) fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let line = |stream: &mut TcpStream, buf: &mut Vec<u8>| -> io::Result<String> {
        let end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            fill(stream, buf)?;
        };
        let text = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 2);
        Ok(text)
    };
    loop {
        let size_line = line(stream, buf)?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid("a bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !line(stream, buf)?.is_empty() {}
            return Ok(body);
        }
        while buf.len() < size + 2 {
            fill(stream, buf)?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}
