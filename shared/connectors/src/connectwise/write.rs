//! The ConnectWise writer: duplicate search, create and update of companies, contacts,
//! opportunities and activities (psa-apis.md / salesforce-api.md, writes). NOT BUILT YET:
//! every write is refused as not written.

use tandem_domain::external::ExternalRecord;
use tandem_domain::ports::{ConnectorError, Written, not_written};
use tandem_domain::{RecordKind, System};

use super::ConnectWiseConnector;

fn kind_of(record: &ExternalRecord) -> RecordKind {
    record.kind().unwrap_or(RecordKind::Company)
}

/// Records like `record` the system holds.
pub async fn find_similar(
    _c: &ConnectWiseConnector,
    record: &ExternalRecord,
) -> Result<Vec<ExternalRecord>, ConnectorError> {
    Err(not_written(System::ConnectWise, kind_of(record)))
}

/// Creates `record`.
pub async fn create(_c: &ConnectWiseConnector, record: &ExternalRecord) -> Result<Written, ConnectorError> {
    Err(not_written(System::ConnectWise, kind_of(record)))
}

/// Sets `fields` of `record`.
pub async fn update(
    _c: &ConnectWiseConnector,
    record: &ExternalRecord,
    _fields: &[&str],
) -> Result<Written, ConnectorError> {
    Err(not_written(System::ConnectWise, kind_of(record)))
}
