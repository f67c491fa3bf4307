//! The media messages in a webhook payload, as Meta sends it (WHATSAPP_MEDIA.md §6): a bot
//! forwards the body it received, and media-origin needs no public webhook of its own.
//!
//! `{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
//! "value": {"metadata": {"phone_number_id"}, "messages": [...]}}]}]}`: every `image`, `video`,
//! `audio` (voice notes too), `document` (with its `filename`) and `sticker` message names a
//! media ID. Other messages (text, reactions…) and other changes (`statuses`) carry no media
//! and are counted, not imported. Hand-read with serde_json rather than typed: Meta adds fields
//! freely, and a payload that is half understood must still yield the media it names.

use serde_json::Value;

/// The message types that carry media.
pub const MEDIA_TYPES: [&str; 5] = ["image", "video", "audio", "document", "sticker"];

/// One media message of a webhook payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMedia {
    /// The message's `id` (`wamid.…`).
    pub message_id: String,
    /// The message's `type`.
    pub kind: String,
    /// The customer's WhatsApp ID (`from`).
    pub from: Option<String>,
    /// `metadata.phone_number_id`: the business number it came in on.
    pub phone_number_id: Option<String>,
    /// The media ID, if the message has one.
    pub media_id: Option<String>,
    /// A document's `filename`.
    pub filename: Option<String>,
}

/// What a payload holds.
#[derive(Debug, Default)]
pub struct Payload {
    /// Its media messages, in order.
    pub media: Vec<IncomingMedia>,
    /// Messages without media.
    pub skipped: usize,
}

/// Whether `body` is a webhook payload (rather than a single import request).
pub fn is_webhook(body: &Value) -> bool {
    body.get("object").is_some() || body.get("entry").is_some()
}

/// The media messages of a webhook payload, or why it is not one.
pub fn parse(body: &Value) -> Result<Payload, String> {
    let object = body.get("object").and_then(Value::as_str);
    if object != Some("whatsapp_business_account") {
        return Err(format!(
            "\"object\" is {}, not \"whatsapp_business_account\": not a WhatsApp webhook payload",
            body.get("object")
                .map_or("missing".to_owned(), Value::to_string)
        ));
    }
    let Some(entries) = body.get("entry").and_then(Value::as_array) else {
        return Err("\"entry\" must be a list, as in Meta's webhook payload".into());
    };
    let mut payload = Payload::default();
    let changes = entries
        .iter()
        .filter_map(|e| e.get("changes")?.as_array())
        .flatten()
        .filter(|c| c.get("field").and_then(Value::as_str).unwrap_or("messages") == "messages")
        .filter_map(|c| c.get("value"));
    for value in changes {
        let phone = value.pointer("/metadata/phone_number_id").and_then(text);
        for message in value
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = message.get("type").and_then(Value::as_str).unwrap_or("");
            if !MEDIA_TYPES.contains(&kind) {
                payload.skipped += 1;
                continue;
            }
            let media = message.get(kind);
            payload.media.push(IncomingMedia {
                message_id: message.get("id").and_then(text).unwrap_or_default(),
                kind: kind.to_owned(),
                from: message.get("from").and_then(text),
                phone_number_id: phone.clone(),
                media_id: media.and_then(|m| m.get("id")).and_then(text),
                filename: media.and_then(|m| m.get("filename")).and_then(text),
            });
        }
    }
    Ok(payload)
}

/// A string, or a number written as one (IDs arrive both ways).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn media_messages_are_found_in_metas_payload() {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
            {"field": "messages", "value": {"messaging_product": "whatsapp",
              "metadata": {"display_phone_number": "15550000000", "phone_number_id": "106540352242922"},
              "messages": [
                {"from": "4915", "id": "wamid.A", "type": "image",
                 "image": {"mime_type": "image/jpeg", "sha256": "x", "id": "111", "caption": "hi"}},
                {"from": "4915", "id": "wamid.B", "type": "text", "text": {"body": "hello"}},
                {"from": "4915", "id": "wamid.C", "type": "audio",
                 "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "y", "id": 222, "voice": true}},
                {"from": "4915", "id": "wamid.D", "type": "document",
                 "document": {"filename": "Rechnung.pdf", "mime_type": "application/pdf", "id": "333"}}
              ]}},
            {"field": "messages", "value": {"statuses": [{"id": "wamid.S", "status": "read"}]}}
        ]}]});
        let p = parse(&body).unwrap();
        assert_eq!(p.skipped, 1);
        let ids: Vec<_> = p
            .media
            .iter()
            .map(|m| m.media_id.clone().unwrap())
            .collect();
        assert_eq!(ids, ["111", "222", "333"]);
        assert_eq!(p.media[2].filename.as_deref(), Some("Rechnung.pdf"));
        assert_eq!(p.media[1].kind, "audio");
        assert_eq!(
            p.media[0].phone_number_id.as_deref(),
            Some("106540352242922")
        );
        assert_eq!(p.media[0].from.as_deref(), Some("4915"));
        assert!(is_webhook(&body));
        assert!(!is_webhook(&json!({"media_id": "1"})));
        assert!(parse(&json!({"object": "page", "entry": []})).is_err());
        assert!(parse(&json!({"object": "whatsapp_business_account"})).is_err());
    }
}
