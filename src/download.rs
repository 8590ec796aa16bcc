//! Streamed downloads that fail visibly: a database error part way through a file must end
//! the HTTP body with an error (the client sees a broken transfer), never end it early as if
//! the file were complete.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::fmt::Display;
use tokio::sync::mpsc;

/// What a download's body is read from: bytes, or the error that ends it.
pub type BodySender = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// The items of `rows` up to its first error. That error is first sent to `body` (the
/// channel the download's body is read from) as an `io::Error`, so the body ends with it
/// before any bytes written after the missing rows; the items stop there.
pub fn until_error<'a, T, E>(
    rows: impl Stream<Item = Result<T, E>> + Send + 'a,
    body: BodySender,
) -> impl Stream<Item = T> + Send + 'a
where
    T: Send + 'a,
    E: Display + Send + 'a,
{
    futures::stream::unfold((rows.boxed(), Some(body)), |(mut rows, body)| async move {
        let body = body?;
        match rows.next().await? {
            Ok(r) => Some((r, (rows, Some(body)))),
            Err(e) => {
                tracing::error!(error = %e, "download stopped: database error");
                let _ = body
                    .send(Err(std::io::Error::other(format!(
                        "the download stopped: {e}"
                    ))))
                    .await;
                None
            }
        }
    })
}

/// A receiver as a stream (the body of a download).
pub fn receiver_stream<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> impl Stream<Item = Result<u32, String>> + Send + 'static {
        futures::stream::iter(vec![
            Ok(1),
            Ok(2),
            Err("connection reset".to_string()),
            Ok(4),
        ])
    }

    #[tokio::test]
    async fn rows_stop_at_the_first_error_and_the_body_gets_it() {
        let (tx, mut rx) = mpsc::channel(16);
        let got: Vec<u32> = until_error(rows(), tx).collect().await;
        assert_eq!(got, vec![1, 2]);
        let err = rx.recv().await.expect("an error for the body").unwrap_err();
        assert!(err.to_string().contains("connection reset"), "{err}");
    }

    #[tokio::test]
    async fn a_database_error_mid_stream_fails_the_http_body() {
        let (tx, rx) = mpsc::channel(16);
        let producer = tx.clone();
        // The producer writes a line per row, and the rest of the file after the rows end,
        // as the upload download does.
        let rows = until_error(rows(), tx);
        tokio::spawn(async move {
            let mut rows = std::pin::pin!(rows);
            while let Some(n) = rows.next().await {
                let _ = producer.send(Ok(Bytes::from(format!("{n}\n")))).await;
            }
            let _ = producer.send(Ok(Bytes::from("rest of the file\n"))).await;
        });
        let body = axum::body::Body::from_stream(receiver_stream(rx));
        assert!(
            axum::body::to_bytes(body, usize::MAX).await.is_err(),
            "a download whose rows failed must not read as a complete file"
        );
    }

    #[tokio::test]
    async fn rows_without_error_make_a_complete_body() {
        let (tx, rx) = mpsc::channel(16);
        let producer = tx.clone();
        let ok = futures::stream::iter(vec![Ok::<u32, String>(1), Ok(2)]);
        let rows = until_error(ok, tx);
        tokio::spawn(async move {
            let mut rows = std::pin::pin!(rows);
            while let Some(n) = rows.next().await {
                let _ = producer.send(Ok(Bytes::from(format!("{n}\n")))).await;
            }
        });
        let body = axum::body::Body::from_stream(receiver_stream(rx));
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("complete");
        assert_eq!(&bytes[..], b"1\n2\n");
    }
}
