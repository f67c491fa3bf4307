//! The upload form of `POST /api/assets` (`multipart/form-data`, as a browser form or
//! `curl -F` sends it): one `file` part, plus `path` (or `folder`, to keep the file's own
//! name), and optional `cache`, `whatsapp` and `convert`, each at most once. With conversion
//! the file is converted as it arrives, so `convert` (and `path` or `folder`, when its folder
//! makes conversion the default) must come before the file part.
//!
//! [`Reader`] reads the form in order, handing over the file part as it comes (the handler
//! streams it into the store) and keeping the small text fields; [`Reader::decide`] then says
//! what the form asks for, or why it is refused (400 `invalid_form`; 400 `malformed_multipart`
//! when it is no form at all).

use std::pin::pin;

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartRejection};

use crate::asset::AssetPath;
use crate::asset::path::parse_folder;
use crate::http::error::ApiError;
use crate::policy::CachePolicy;

/// Largest text field accepted.
const MAX_FIELD: usize = 4096;

/// The text fields of the form, each sent at most once.
#[derive(Debug, Default)]
struct Fields {
    path: Option<String>,
    folder: Option<String>,
    cache: Option<String>,
    whatsapp: Option<String>,
    convert: Option<String>,
}

impl Fields {
    /// Where the text field `name` goes; `None` for a name the form does not have.
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "path" => &mut self.path,
            "folder" => &mut self.folder,
            "cache" => &mut self.cache,
            "whatsapp" => &mut self.whatsapp,
            "convert" => &mut self.convert,
            _ => return None,
        })
    }
}

/// A part of the form, as [`Reader::next_part`] reads it.
pub enum Part<'a> {
    /// A text field, now kept by the reader.
    Text,
    /// The file part, handed over.
    File(Box<FilePart<'a>>),
}

/// The file part, as [`Reader::next_part`] hands it over.
pub struct FilePart<'a> {
    /// The part itself, to be read to its end.
    pub field: Field<'a>,
    /// The file name the client gave, as given.
    pub file_name: Option<String>,
    /// The part's own `Content-Type`.
    pub content_type: Option<String>,
    /// The `convert` field, if it came before this part.
    pub convert: Option<String>,
    /// The asset path as far as the fields before this part tell (see [`Reader::before_file`]).
    pub path: Option<String>,
}

/// What a form asks for.
#[derive(Debug, PartialEq)]
pub struct Upload {
    /// Where the file goes.
    pub path: AssetPath,
    /// The asset's own cache policy (an empty field is none).
    pub cache: Option<CachePolicy>,
    /// Also upload to the Media API.
    pub whatsapp: bool,
    /// The file name to keep: the last segment of the one the client gave, if not empty.
    pub filename: Option<String>,
    /// The `convert` field as sent, if it was.
    pub convert: Option<String>,
}

/// Reads an upload form; see the module's documentation.
pub struct Reader {
    form: Multipart,
    fields: Fields,
    /// `Some` once the file part came, with its file name.
    file: Option<Option<String>>,
}

fn malformed(text: String) -> ApiError {
    ApiError::bad_request("malformed_multipart", text)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_form", message)
}

impl Reader {
    /// A reader of `form`; 400 `malformed_multipart` when the request is no form.
    pub fn new(form: Result<Multipart, MultipartRejection>) -> Result<Self, ApiError> {
        Ok(Self {
            form: form.map_err(|e| malformed(e.body_text()))?,
            fields: Fields::default(),
            file: None,
        })
    }

    /// Read the next part: a text field is kept, the file part is handed over (to be read to
    /// its end before the next call); `None` at the end of the form. Refuses an unknown field,
    /// a repeated one, a second file part, and a text field over [`MAX_FIELD`] bytes or not
    /// UTF-8.
    pub async fn next_part(&mut self) -> Result<Option<Part<'_>>, ApiError> {
        let Some(field) = self
            .form
            .next_field()
            .await
            .map_err(|e| malformed(e.body_text()))?
        else {
            return Ok(None);
        };
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            if self.file.is_some() {
                return Err(invalid("send one `file` part per request"));
            }
            let file_name = field.file_name().map(str::to_owned);
            self.file = Some(file_name.clone());
            let (convert, path) = before_file(&self.fields, file_name.as_deref());
            let convert = convert.map(str::to_owned);
            return Ok(Some(Part::File(Box::new(FilePart {
                content_type: field.content_type().map(str::to_owned),
                file_name,
                field,
                convert,
                path,
            }))));
        }
        let Some(slot) = self.fields.slot(&name) else {
            return Err(invalid(format!(
                "unknown form field {name:?}; expected file, path, folder, cache, whatsapp, \
                 convert"
            )));
        };
        if slot.is_some() {
            // Keeping the first or the last would be a guess; the file part is refused twice
            // too.
            return Err(invalid(format!(
                "the form field {name:?} is repeated; send it once"
            )));
        }
        *slot = Some(small_text(field, &name).await?);
        Ok(Some(Part::Text))
    }

    /// What the form, read to its end, asks for.
    pub fn decide(&self) -> Result<Upload, ApiError> {
        let f = &self.fields;
        let cache = f
            .cache
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(str::parse)
            .transpose()?;
        let whatsapp = match f.whatsapp.as_deref() {
            None | Some("" | "false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "whatsapp must be true or false, not {other:?}"
                )));
            }
        };
        let Some(file_name) = &self.file else {
            return Err(invalid("the form has no `file` part"));
        };
        let path = match (f.path.as_deref(), f.folder.as_deref()) {
            (Some(p), None) => AssetPath::parse(p)?,
            (None, Some(folder)) => {
                let name = file_name.as_deref().filter(|n| !n.is_empty());
                let name = name.ok_or_else(|| {
                    invalid("with `folder`, the file part needs a file name; or send `path`")
                })?;
                let name = last_segment(name);
                let folder = folder.trim_matches('/');
                if folder.is_empty() {
                    AssetPath::parse(name)?
                } else {
                    AssetPath::parse(&format!("{}/{name}", parse_folder(folder)?))?
                }
            }
            _ => return Err(invalid("give exactly one of `path` or `folder`")),
        };
        Ok(Upload {
            path,
            cache,
            whatsapp,
            filename: file_name
                .as_deref()
                .map(last_segment)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            convert: f.convert.clone(),
        })
    }
}

/// What the form said before the file part: its `convert` field and the asset path as far as
/// it is known (from `path`, or `folder` and the file name), to choose how the file is taken as
/// it arrives.
fn before_file<'f>(f: &'f Fields, file_name: Option<&str>) -> (Option<&'f str>, Option<String>) {
    let path = f.path.clone().or_else(|| {
        let folder = f.folder.as_deref()?.trim_matches('/');
        let name = last_segment(file_name?);
        Some(format!("{folder}/{name}"))
    });
    (f.convert.as_deref(), path)
}

/// Browsers send a bare file name; keep only the last segment of anything else.
fn last_segment(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Read a small text field of the form, refusing one longer than [`MAX_FIELD`].
async fn small_text(field: Field<'_>, name: &str) -> Result<String, ApiError> {
    let mut field = pin!(field);
    let mut buf = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut field).await {
        let chunk = chunk.map_err(|e| malformed(e.body_text()))?;
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_FIELD {
            return Err(invalid(format!(
                "the form field {name:?} is longer than {MAX_FIELD} bytes"
            )));
        }
    }
    String::from_utf8(buf).map_err(|_| invalid(format!("the form field {name:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::FromRequest;
    use axum::http::{Request, StatusCode, header};

    use super::*;

    /// One part of a form: its name, its file name, its bytes.
    type Sent<'a> = (&'a str, Option<&'a str>, &'a [u8]);

    const BOUNDARY: &str = "XyZ";

    /// A reader over the form of `parts`, as a real request brings it.
    async fn reader(parts: &[Sent<'_>]) -> Reader {
        let mut body = Vec::new();
        for (name, file_name, bytes) in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            let file = file_name.map_or(String::new(), |f| format!("; filename=\"{f}\""));
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let req = Request::post("/assets")
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(body))
            .unwrap();
        Reader::new(Multipart::from_request(req, &()).await).unwrap()
    }

    /// Read the form of `parts` to its end, as the handler does (the file's bytes are
    /// returned in place of staging them), and decide.
    async fn read(parts: &[Sent<'_>]) -> Result<(Upload, Vec<u8>), ApiError> {
        let mut form = reader(parts).await;
        let mut file = None;
        while let Some(part) = form.next_part().await? {
            if let Part::File(part) = part {
                file = Some(part.field.bytes().await.unwrap().to_vec());
            }
        }
        let upload = form.decide()?;
        Ok((upload, file.expect("a decided form has a file")))
    }

    /// The 400 `invalid_form` that `parts` get; its message.
    async fn refused(parts: &[Sent<'_>]) -> String {
        let e = read(parts).await.expect_err("refused");
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "invalid_form"),
            "{e:?}"
        );
        e.message
    }

    const FILE: Sent = ("file", Some("Banner.JPG"), b"bytes");

    #[tokio::test]
    async fn a_form_with_a_path_asks_for_that_path() {
        let (upload, bytes) = read(&[("path", None, b"promo/a.jpg"), FILE]).await.unwrap();
        assert_eq!(bytes, b"bytes");
        assert_eq!(
            upload,
            Upload {
                path: AssetPath::parse("promo/a.jpg").unwrap(),
                cache: None,
                whatsapp: false,
                filename: Some("Banner.JPG".into()),
                convert: None,
            }
        );
    }

    #[tokio::test]
    async fn a_form_with_a_folder_keeps_the_files_last_name_segment() {
        let file = ("file", Some("C:\\photos\\x/b.png"), &b"png"[..]);
        let (upload, _) = read(&[file, ("folder", None, b"/promo/")]).await.unwrap();
        assert_eq!(upload.path.as_str(), "promo/b.png");
        assert_eq!(upload.filename.as_deref(), Some("b.png"));
        let (upload, _) = read(&[("folder", None, b""), file]).await.unwrap();
        assert_eq!(upload.path.as_str(), "b.png");
    }

    #[tokio::test]
    async fn cache_and_whatsapp_are_read_and_empty_is_none() {
        let parts = [
            FILE,
            ("path", None, &b"a.jpg"[..]),
            ("cache", None, b"no-store"),
            ("whatsapp", None, b"true"),
        ];
        let (upload, _) = read(&parts).await.unwrap();
        assert_eq!(upload.cache, Some("no-store".parse().unwrap()));
        assert!(upload.whatsapp);
        let parts = [
            FILE,
            ("path", None, &b"a.jpg"[..]),
            ("cache", None, b""),
            ("whatsapp", None, b""),
        ];
        let (upload, _) = read(&parts).await.unwrap();
        assert_eq!((upload.cache, upload.whatsapp), (None, false));
        let e = read(&[FILE, ("path", None, b"a.jpg"), ("cache", None, b"forever")]).await;
        assert_eq!(e.unwrap_err().code, "invalid_policy");
    }

    #[tokio::test]
    async fn a_repeated_field_is_refused_not_guessed() {
        let message = refused(&[("path", None, b"a.jpg"), ("path", None, b"b.jpg"), FILE]).await;
        assert!(message.contains("\"path\" is repeated"), "{message}");
        let message = refused(&[FILE, ("path", None, b"a.jpg"), FILE]).await;
        assert!(message.contains("one `file` part"), "{message}");
    }

    #[tokio::test]
    async fn every_other_refusal_is_invalid_form() {
        for (parts, says) in [
            (vec![("path", None, &b"a.jpg"[..])], "no `file` part"),
            (vec![FILE], "exactly one of `path` or `folder`"),
            (
                vec![FILE, ("path", None, b"a.jpg"), ("folder", None, b"x")],
                "exactly one",
            ),
            (
                vec![("file", None, &b"x"[..]), ("folder", None, b"x")],
                "needs a file name",
            ),
            (
                vec![("file", Some(""), &b"x"[..]), ("folder", None, b"x")],
                "needs a file name",
            ),
            (
                vec![FILE, ("path", None, b"a.jpg"), ("whatsapp", None, b"yes")],
                "true or false",
            ),
            (
                vec![FILE, ("name", None, b"a.jpg")],
                "unknown form field \"name\"",
            ),
            (vec![FILE, ("path", None, &[0xff, 0xfe][..])], "not UTF-8"),
            (
                vec![FILE, ("path", None, &[b'a'; MAX_FIELD + 1][..])],
                "longer than 4096",
            ),
        ] {
            let message = refused(&parts).await;
            assert!(message.contains(says), "{says}: {message}");
        }
    }

    #[tokio::test]
    async fn a_bad_path_is_invalid_path() {
        let e = read(&[FILE, ("path", None, b"../a.jpg")])
            .await
            .unwrap_err();
        assert_eq!(e.code, "invalid_path");
    }

    #[tokio::test]
    async fn no_form_at_all_is_malformed_multipart() {
        let req = Request::post("/assets")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let e = Reader::new(Multipart::from_request(req, &()).await)
            .err()
            .unwrap();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "malformed_multipart")
        );
    }
}
