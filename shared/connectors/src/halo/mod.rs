//! The HaloPSA connector (not built yet: `connect` refuses with a clear error).

use std::sync::Arc;

use tandem_domain::System;
use tandem_domain::ports::{Connector, ConnectorError, ErrorKind};
use tandem_domain::secret::HaloCredentials;

use crate::http::Settings;

/// A connector for these credentials.
pub fn connect(
    _client: reqwest::Client,
    _settings: Settings,
    _creds: &HaloCredentials,
) -> Result<Arc<dyn Connector>, ConnectorError> {
    Err(ConnectorError::new(System::Halo, ErrorKind::Invalid, "the HaloPSA connector is not built yet"))
}
