//! Against local fake servers (wiremock on 127.0.0.1).

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

fn origin(server: &MockServer) -> AllowedHost {
    let url = Url::parse(&server.uri()).unwrap();
    AllowedHost::HttpOrigin {
        host: url.host_str().unwrap().to_owned(),
        port: url.port().unwrap(),
    }
}

async fn body_of(d: Download) -> Vec<u8> {
    d.body
        .try_fold(Vec::new(), |mut acc, b| async move {
            acc.extend_from_slice(&b);
            Ok(acc)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn allowed_origin_streams_the_body_with_its_length() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/rec.mp4"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(vec![7u8; 5000])
                .insert_header("content-type", "video/mp4"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let d = HttpDownloader::new(vec![origin(&server)]);
    let dl = d.open(&format!("{}/rec.mp4", server.uri())).await.unwrap();
    assert_eq!(dl.content_length, Some(5000));
    assert_eq!(dl.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(body_of(dl).await, vec![7u8; 5000]);
}

#[tokio::test]
async fn url_on_a_host_not_allowed_is_never_requested() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    // Same host, other port; and the same origin over https: neither is the allowed origin.
    let d = HttpDownloader::new(vec![
        AllowedHost::HttpOrigin {
            host: "127.0.0.1".into(),
            port: 1,
        },
        AllowedHost::Exact("127.0.0.1".into()),
    ]);
    let err = d
        .open(&format!("{}/rec.mp4?token=secret", server.uri()))
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::NotAllowed { .. }), "{err}");
    assert!(!err.is_transient());
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn redirect_to_a_host_not_allowed_is_refused_before_it_is_requested() {
    let allowed = MockServer::start().await;
    let other = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"internal".to_vec()))
        .mount(&other)
        .await;
    Mock::given(path("/rec.mp4"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/x", other.uri())),
        )
        .mount(&allowed)
        .await;
    let d = HttpDownloader::new(vec![origin(&allowed)]);
    let err = d
        .open(&format!("{}/rec.mp4", allowed.uri()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DownloadError::NotAllowed { url } if url.starts_with(&other.uri())),
        "{err}"
    );
    assert!(!err.is_transient());
    assert!(other.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn redirect_to_another_allowed_host_is_followed() {
    let first = MockServer::start().await;
    let second = MockServer::start().await;
    Mock::given(path("/final.mp4"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"data".to_vec()))
        .mount(&second)
        .await;
    Mock::given(path("/rec.mp4"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/final.mp4", second.uri())),
        )
        .mount(&first)
        .await;
    let d = HttpDownloader::new(vec![origin(&first), origin(&second)]);
    let dl = d.open(&format!("{}/rec.mp4", first.uri())).await.unwrap();
    assert_eq!(dl.url.path(), "/final.mp4");
    assert_eq!(body_of(dl).await, b"data");
}

#[tokio::test]
async fn client_errors_are_permanent_and_server_errors_transient() {
    let server = MockServer::start().await;
    for (status, transient) in [
        (404, false),
        (403, false),
        (410, false),
        (408, true),
        (429, true),
        (500, true),
        (503, true),
    ] {
        Mock::given(path(format!("/s{status}")))
            .respond_with(ResponseTemplate::new(status))
            .mount(&server)
            .await;
        let d = HttpDownloader::new(vec![origin(&server)]);
        let err = d
            .open(&format!("{}/s{status}", server.uri()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::Status { status: s, .. } if s == status),
            "{err}"
        );
        assert_eq!(err.is_transient(), transient, "{status}");
    }
}

#[tokio::test]
async fn connection_refused_is_transient() {
    // Bind then drop a listener to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = HttpDownloader::new(vec![AllowedHost::HttpOrigin {
        host: "127.0.0.1".into(),
        port,
    }]);
    let err = d
        .open(&format!("http://127.0.0.1:{port}/rec.mp4"))
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::Network { .. }), "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn malformed_urls_are_permanent() {
    let d = HttpDownloader::new(vec![AllowedHost::Exact("example.com".into())]);
    let err = d.open("not a url").await.unwrap_err();
    assert!(matches!(err, DownloadError::InvalidUrl { .. }), "{err}");
    assert!(!err.is_transient());
}
