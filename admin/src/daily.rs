//! `daily webhook create|list|rearm|delete` over the shared Daily client
//! (video-platform-apis.md A4: `POST /webhooks`, `GET /webhooks`, `POST /webhooks/:uuid`,
//! `DELETE /webhooks/:uuid`).

use base64::Engine;
use serde_json::{json, Value};

use shared::platform::daily::{NewWebhook, Webhook};
use shared::platform::{DailyClient, HttpSettings};
use shared::webhook::daily::HANDLED_EVENT_TYPES;

use crate::cli::WebhookCommand;
use crate::output::{table, Output};
use crate::{AdminError, Ctx};

/// Bytes of a generated HMAC secret: as long as the SHA-256 output it keys.
const SECRET_BYTES: usize = 32;

fn client(ctx: &Ctx) -> Result<DailyClient, AdminError> {
    let http = HttpSettings::default();
    let reqwest = reqwest::Client::builder()
        .timeout(http.timeout)
        .build()
        .map_err(|e| AdminError::Failed(format!("cannot build an HTTP client: {e}")))?;
    Ok(DailyClient::from_config(&ctx.config.daily, reqwest, http)?)
}

/// A new base64 secret from the operating system's CSPRNG.
pub fn generate_secret() -> Result<String, AdminError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| AdminError::Failed(format!("no randomness for the secret: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The webhook as printed: everything Daily answered but the secret.
fn webhook_json(w: &Webhook) -> Value {
    json!({
        "uuid": w.uuid,
        "url": w.url,
        "state": w.state.as_str(),
        "failedCount": w.failed_count,
        "eventTypes": w.event_types,
        "retryType": w.retry_type,
        "createdAt": w.created_at,
        "updatedAt": w.updated_at,
    })
}

fn webhooks_table(hooks: &[Webhook]) -> String {
    table(
        &["uuid", "url", "state", "failedCount", "eventTypes"],
        hooks.iter().map(|w| {
            vec![
                w.uuid.clone(),
                w.url.clone(),
                w.state.as_str().to_owned(),
                w.failed_count.to_string(),
                w.event_types.join(","),
            ]
        }),
    )
}

pub async fn webhook(ctx: &Ctx, command: &WebhookCommand) -> Result<Output, AdminError> {
    match command {
        WebhookCommand::Create {
            url,
            hmac,
            event_types,
            retry_type,
        } => create(ctx, url, hmac.as_deref(), event_types, retry_type.clone()).await,
        WebhookCommand::List => {
            let hooks = client(ctx)?.list_webhooks().await?;
            Ok(Output::new(
                hooks.iter().map(webhook_json).collect(),
                webhooks_table(&hooks),
            ))
        }
        WebhookCommand::Rearm { uuid, url } => rearm(ctx, uuid.as_deref(), url.as_deref()).await,
        WebhookCommand::Delete { uuid } => {
            let answer = client(ctx)?.delete_webhook(uuid).await?;
            let text = match &answer {
                Some(body) => format!("Deleted webhook {uuid}. Daily answered:\n{body}"),
                None => format!("Webhook {uuid} is gone (Daily did not know it)."),
            };
            Ok(Output::new(
                json!({"deleted": uuid, "answer": answer}),
                text,
            ))
        }
    }
}

async fn create(
    ctx: &Ctx,
    url: &str,
    hmac: Option<&str>,
    event_types: &[String],
    retry_type: Option<String>,
) -> Result<Output, AdminError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| AdminError::Usage(format!("--url {url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(AdminError::Usage(format!(
            "--url {url:?} must be an http(s) URL"
        )));
    }
    let generated = hmac.is_none();
    let secret = match hmac {
        Some(given) => {
            // Daily refuses a secret that is not base64; say so before asking it.
            base64::engine::general_purpose::STANDARD
                .decode(given)
                .map_err(|e| AdminError::Usage(format!("--hmac is not base64: {e}")))?;
            given.to_owned()
        }
        None => generate_secret()?,
    };
    let event_types = if event_types.is_empty() {
        HANDLED_EVENT_TYPES
            .iter()
            .map(|t| (*t).to_owned())
            .collect()
    } else {
        event_types.to_vec()
    };
    let client = client(ctx)?;
    let created = client
        .create_webhook(&NewWebhook {
            url: url.to_owned(),
            event_types,
            hmac: Some(secret.clone()),
            retry_type,
        })
        .await?;
    // The secret Daily signs with: its answer's, else the one sent.
    let secret = created.hmac.clone().unwrap_or(secret);
    let mut json = webhook_json(&created);
    json["hmac"] = json!(secret);
    json["store_as"] = json!("DAILY_WEBHOOK_SECRET");
    let secret_text = if generated {
        format!(
            "\nSecret (shown once): {secret}\nStore it as DAILY_WEBHOOK_SECRET (the \
             DailyWebhookSecret parameter: sam deploy --parameter-overrides \
             DailyWebhookSecret=<secret>); the daily-webhook function refuses every event \
             until it has it."
        )
    } else {
        "\nThe webhook signs with the secret you gave: DAILY_WEBHOOK_SECRET must hold it."
            .to_owned()
    };
    let text = format!(
        "Created webhook (Daily's test request to the URL was answered 200):\n{}{secret_text}",
        webhooks_table(std::slice::from_ref(&created))
    );
    Ok(Output::new(json, text))
}

async fn rearm(ctx: &Ctx, uuid: Option<&str>, url: Option<&str>) -> Result<Output, AdminError> {
    let client = client(ctx)?;
    let (uuid, url) = match (uuid, url) {
        (Some(u), Some(url)) => (u.to_owned(), url.to_owned()),
        (uuid, url) => {
            let hooks = client.list_webhooks().await?;
            let hook = match uuid {
                Some(u) => hooks.iter().find(|w| w.uuid == u).ok_or_else(|| {
                    AdminError::Failed(format!(
                        "Daily has no webhook {u} (`reflector-admin daily webhook list` shows them)"
                    ))
                })?,
                None => match hooks.as_slice() {
                    [one] => one,
                    [] => {
                        return Err(AdminError::Failed(
                            "Daily has no webhook to re-arm: create one with \
                             `reflector-admin daily webhook create --url URL`"
                                .into(),
                        ))
                    }
                    _ => {
                        return Err(AdminError::Usage(format!(
                            "Daily has {} webhooks: say which with --uuid",
                            hooks.len()
                        )))
                    }
                },
            };
            (
                hook.uuid.clone(),
                url.map_or_else(|| hook.url.clone(), str::to_owned),
            )
        }
    };
    let rearmed = client.reactivate_webhook(&uuid, &url, None).await?;
    Ok(Output::new(
        webhook_json(&rearmed),
        format!(
            "Re-armed (Daily's test request to the URL was answered 200):\n{}",
            webhooks_table(std::slice::from_ref(&rearmed))
        ),
    ))
}
