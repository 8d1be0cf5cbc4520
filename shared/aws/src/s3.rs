//! [`S3Snapshots`], the snapshot store in AWS: one S3 object per snapshot
//! (`<tenant>/<id>.jsonl` in the snapshot bucket). A snapshot is written a line at a time
//! to a temporary file (Lambda's `/tmp`), then uploaded from it as one streamed body, so
//! it is never held in memory and appears in S3 whole or not at all; it is read back as a
//! streamed body a line at a time.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};

use tandem_domain::ports::{LineReader, LineWriter, SnapshotStore, StoreError};

use crate::error::{AwsError, AwsErrorKind};

const SERVICE: &str = "S3";

/// Snapshot objects in one S3 bucket.
#[derive(Clone, Debug)]
pub struct S3Snapshots {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Snapshots {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str) -> Self {
        Self { client, bucket: bucket.to_string() }
    }
}

fn local(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("snapshot {what}: {e}"))
}

struct S3Writer {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    file: tempfile::TempPath,
    out: BufWriter<tokio::fs::File>,
    bytes: u64,
}

#[async_trait]
impl LineWriter for S3Writer {
    async fn line(&mut self, line: &[u8]) -> Result<(), StoreError> {
        self.out.write_all(line).await.map_err(|e| local("temporary file", e))?;
        self.out.write_all(b"\n").await.map_err(|e| local("temporary file", e))?;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        self.out.flush().await.map_err(|e| local("temporary file", e))?;
        let body = ByteStream::from_path(&self.file).await.map_err(|e| local("temporary file", e))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/x-ndjson")
            .body(body)
            .send()
            .await
            .map_err(|e| StoreError::from(AwsError::from_sdk(SERVICE, "PutObject", &e)))?;
        Ok(self.bytes)
    }
}

struct S3Reader {
    lines: tokio::io::Split<BufReader<Box<dyn tokio::io::AsyncRead + Send + Unpin>>>,
}

#[async_trait]
impl LineReader for S3Reader {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        self.lines.next_segment().await.map_err(|e| StoreError::Unavailable(format!("S3 GetObject body: {e}")))
    }
}

#[async_trait]
impl SnapshotStore for S3Snapshots {
    async fn create(&self, key: &str) -> Result<Box<dyn LineWriter>, StoreError> {
        let file = tempfile::NamedTempFile::new().map_err(|e| local("temporary file", e))?;
        let (std_file, path) = file.into_parts();
        let out = BufWriter::with_capacity(1 << 16, tokio::fs::File::from_std(std_file));
        Ok(Box::new(S3Writer {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            file: path,
            out,
            bytes: 0,
        }))
    }

    async fn open(&self, key: &str) -> Result<Option<Box<dyn LineReader>>, StoreError> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let body: Box<dyn tokio::io::AsyncRead + Send + Unpin> = Box::new(out.body.into_async_read());
                Ok(Some(Box::new(S3Reader { lines: BufReader::new(body).split(b'\n') })))
            }
            Err(e) => {
                let e = AwsError::from_sdk(SERVICE, "GetObject", &e);
                match e.kind {
                    AwsErrorKind::NotFound if e.code.as_deref() == Some("NoSuchKey") => Ok(None),
                    _ => Err(e.into()),
                }
            }
        }
    }
}

/// Creates the snapshot bucket unless it exists (the local runner on moto, and tests; in
/// AWS the SAM template makes it, with its lifecycle).
pub async fn create_bucket_if_missing(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), AwsError> {
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = AwsError::from_sdk(SERVICE, "CreateBucket", &e);
            match e.kind {
                AwsErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            }
        }
    }
}
