/**
 * Wire shapes of the 3CX V20 XAPI (API 20.0.10) that the 3CX target reads and writes. Only the properties
 * pbxsync touches are declared; the server sends many more (`Pbx.User` has about 80). Field names are exactly
 * the vendor's, including its inconsistencies (`Mobile` here, `MobileNumber` in the CSV import; `VMPIN`;
 * `OutboundCallerID`). Everything is nullable on the wire because the OpenAPI file marks it so.
 */

/** `Pbx.Rights`: the role of a member within one group. `RoleName` is the only non-nullable property. */
export interface XapiRights {
  RoleName: string;
}

/** `Pbx.UserGroup`: one group membership of a DN (a user's department membership). */
export interface XapiUserGroup {
  Id?: number;
  GroupId: number;
  Name?: string | null;
  Number?: string | null;
  /** Navigation property: only present with `$expand=Groups($expand=Rights)`. */
  Rights?: XapiRights | null;
}

/** `Pbx.Phone`: a provisioned phone attached to a user. */
export interface XapiPhone {
  Id?: number;
  MacAddress?: string | null;
  TemplateName?: string | null;
  /** The phone model's display name (e.g. "Yealink T46U"). */
  Name?: string | null;
  /** Server-filled provisioning settings; sent back untouched when the phone stays. */
  Settings?: Record<string, unknown> | null;
  [other: string]: unknown;
}

/** `Pbx.User`, the subset pbxsync maps. */
export interface XapiUser {
  Id: number;
  Number?: string | null;
  FirstName?: string | null;
  LastName?: string | null;
  DisplayName?: string | null;
  EmailAddress?: string | null;
  Mobile?: string | null;
  OutboundCallerID?: string | null;
  Language?: string | null;
  Enabled?: boolean | null;
  Require2FA?: boolean | null;
  VMEnabled?: boolean | null;
  VMPIN?: string | null;
  HideInPhonebook?: boolean | null;
  RecordCalls?: boolean | null;
  PrimaryGroupId?: number | null;
  Groups?: XapiUserGroup[] | null;
  Phones?: XapiPhone[] | null;
  [other: string]: unknown;
}

/** `Pbx.Group`: a department. */
export interface XapiGroup {
  Id: number;
  Name?: string | null;
  Number?: string | null;
  IsDefault?: boolean | null;
  Language?: string | null;
}

/** `Pbx.SetRoute`: one DID routed to a DN. */
export interface XapiRoute {
  DID: string;
  TrunkId?: number | null;
  DisplayName?: string | null;
}

/** `Pbx.SetRouteRequest`: all routes of one DN (replace semantics on write). */
export interface XapiRouteSet {
  Id: number;
  Routes?: XapiRoute[] | null;
}

/** `Pbx.DidNumber`: a DID in a trunk's catalogue. */
export interface XapiDidNumber {
  Number: string;
  TrunkId?: number | null;
}

/** `Pbx.UserDeleteError`: one failure of `Users/Pbx.BatchDelete`, keyed by extension, not by Id. */
export interface XapiUserDeleteError {
  ExtensionNumber?: string | null;
  Error?: string | null;
}

/** An OData collection response. 3CX never sends `@odata.nextLink`; paging is `$top`/`$skip` only. */
export interface ODataCollection<T> {
  '@odata.count'?: number;
  value: T[];
}
