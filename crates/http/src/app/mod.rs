//! What the API and the console share beneath their routes.

pub mod session;
