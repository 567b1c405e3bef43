//! The console's front page.

use crate::TestApp;

#[tokio::test]
async fn the_front_page_says_what_this_is_to_a_visitor_and_sends_a_member_to_their_organizations() {
    let app = TestApp::spawn().await;
    let visitor = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!((visitor.status().as_u16(), visitor.url().path()), (200, "/"), "no redirect without a session");
    let html = visitor.text().await.unwrap();
    assert!(
        html.contains("<h1>Healthcare marketing, reviewed before it goes out</h1>")
            && html.contains("healthcare organizations"),
        "{html}"
    );
    for link in ["href=\"/sign-in\"", "href=\"/sign-up\"", "href=\"/docs\""] {
        assert!(html.contains(link), "{link}: {html}");
    }

    let member = app.signed_in("ada@example.com").await;
    let signed_in = app.http.get(format!("{}/", app.base)).header("cookie", format!("__Host-mos_session={member}"));
    let page = signed_in.send().await.unwrap();
    assert_eq!((page.status().as_u16(), page.url().path()), (200, "/orgs"));
    assert!(page.text().await.unwrap().contains("Your organizations"));
}
