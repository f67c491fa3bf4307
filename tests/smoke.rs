mod common;
use common::{TestServer, fixtures};

#[tokio::test]
async fn smoke() {
    let s = TestServer::start().await;
    let rec = s.upload("promo/a.jpg", "image/jpeg", fixtures::jpeg(5000, 1)).await;
    println!("{rec:#}");
    let r = s.get(&s.media("promo/a.jpg")).await;
    println!("{:?}", r.headers());
    assert_eq!(r.status(), 200);
    let r = s.client.head(s.media("promo/a.jpg")).send().await.unwrap();
    println!("{:?}", r.headers());
    let r = s.client.post(s.media("promo/a.jpg")).send().await.unwrap();
    println!("{:?}", r.headers());
    println!("{}", r.text().await.unwrap());
}
