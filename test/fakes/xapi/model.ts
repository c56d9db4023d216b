/**
 * Entity shapes and property catalogues of the fake 3CX XAPI (field names as in 3CX's OpenAPI 20.0.10).
 *
 * The property lists drive three behaviours a real OData service has and a lenient fake would hide:
 * unknown properties in a POST/PATCH body are rejected (catches `MobileNumber` vs `Mobile`),
 * values of the wrong JSON type are rejected (catches `"true"` for a boolean), and unknown names in
 * `$select`/`$filter` are rejected.
 */

/** Primitive kinds used for body validation: boolean, string, int32, enum string, complex/array, navigation. */
export type PropKind = 'b' | 's' | 'i' | 'e' | 'x' | 'nav';

/** Allowed values of the enum-typed string properties that the fake validates. */
export const ENUMS: Record<string, readonly string[]> = {
  TranscriptionMode: ['Nothing', 'Voicemail', 'Recordings', 'Both', 'Inherit'],
  CallUsRequirement: ['Both', 'Name', 'Email', 'None'],
  QueueStatus: ['LoggedOut', 'LoggedIn'],
  SRTPMode: ['SRTPDisabled', 'SRTPEnabled', 'SRTPEnforced'],
  VMEmailOptions: ['None', 'Notification', 'Attachment', 'AttachmentAndDelete', 'VmailToMembers', 'EmailToExtrasOnly'],
  VMPlayMsgDateTime: ['None', 'Play12Hr', 'Play24Hr'],
};

/** Values of `Pbx.UserTag`. */
export const USER_TAGS = ['MS', 'Teams', 'Google', 'WakeUp', 'FaxServer', 'Principal', 'WeakID', 'WeakPass', 'WM', 'AI'];

function kinds(spec: Record<PropKind, string>): Record<string, PropKind> {
  const out: Record<string, PropKind> = {};
  for (const [k, names] of Object.entries(spec) as Array<[PropKind, string]>) {
    for (const n of names.split(/\s+/).filter(Boolean)) out[n] = k;
  }
  return out;
}

/** `Pbx.User` (80 properties, including those inherited from `Pbx.DN` and `Pbx.ClickToCall`). */
export const USER_PROPS = kinds({
  i: 'Id PinProtectTimeout PrimaryGroupId',
  s: `Number ClickToCallId AccessPassword AuthID AuthPassword Blfs ContactImage CurrentProfileName
      DeskphonePassword DisplayName EmailAddress EmergencyAdditionalInfo EmergencyLocationId FirstName
      HotdeskingAssignment Language LastName Mobile OutboundCallerID PromptSet SIPID VMPIN WebMeetingFriendlyName`,
  e: 'TranscriptionMode CallUsRequirement QueueStatus SRTPMode VMEmailOptions VMPlayMsgDateTime',
  b: `CallUsEnableChat CallUsEnablePhone CallUsEnableVideo AIAgent AllowLanOnly AllowOwnRecordings BlockTunnel
      CallScreening DatevEnabled Enable2FA Enabled EnableHotdesking ForbidRecording GoogleCalendarEnabled
      GoogleContactsEnabled GoogleSignInEnabled HideInPhonebook Internal IsRegistered MS365CalendarEnabled
      MS365ContactsEnabled MS365SignInEnabled MS365TeamsEnabled MyPhoneAllowDeleteRecordings MyPhoneHideForwardings
      MyPhonePush MyPhoneShowRecordings PbxDeliversAudio PinProtected RecordCalls RecordEmailNotify
      RecordExternalCallsOnly Require2FA SendEmailMissedCalls VMDisablePinAuth VMEnabled VMPlayCallerID
      WebMeetingApproveParticipants`,
  x: 'AgentSettings BreakTime Hours OfficeHoursProps Tags',
  nav: 'Groups Phones ForwardingProfiles ForwardingExceptions Greetings',
});

/** `Pbx.Group` (department). `HasMembers` is computed by the fake. */
export const GROUP_PROPS = kinds({
  i: 'Id AnswerAfter',
  s: `Number ClickToCallId CustomPrompt Language LastLoginTime MusicOnHold Name OverrideExpiresAt PromptSet TimeZoneId`,
  e: 'TranscriptionMode CallUsRequirement',
  b: 'CallUsEnableChat CallUsEnablePhone CallUsEnableVideo AllowCallService DisableCustomPrompt GloballyVisible HasMembers IsDefault OverrideHolidays',
  x: 'BreakRoute BreakTime CallHandlingMode CurrentGroupHours CustomOperator HolidaysRoute Hours OfficeRoute OutOfOfficeRoute Props',
  nav: 'Groups Members Rights OfficeHolidays',
});

/** `Pbx.UserGroup` (a membership row). */
export const USERGROUP_PROPS = kinds({
  i: 'Id GroupId',
  s: 'MemberName Name Number',
  e: 'TranscriptionMode Type',
  b: 'CanDelete',
  x: 'Tags',
  nav: 'Rights GroupRights',
});

/** Boolean flags of `Pbx.Rights`; `RoleName` is the only non-nullable field. */
export const RIGHTS_FLAGS = [
  'AllowIVR',
  'AllowParking',
  'AllowToChangePresence',
  'AllowToManageCompanyBook',
  'AssignClearOperations',
  'CanBargeIn',
  'CanIntercom',
  'CanSeeGroupCalls',
  'CanSeeGroupMembers',
  'CanSeeGroupRecordings',
  'Invalid',
  'PerformOperations',
  'ShowMyCalls',
  'ShowMyPresence',
  'ShowMyPresenceOutside',
] as const;

/** `Pbx.Rights`. */
export const RIGHTS_PROPS = kinds({ s: 'RoleName', b: RIGHTS_FLAGS.join(' '), i: '', e: '', x: '', nav: '' });

/** `Pbx.Phone`. */
export const PHONE_PROPS = kinds({
  i: 'Id',
  s: 'Interface MacAddress Name ProvisioningLinkExt ProvisioningLinkLocal TemplateName',
  x: 'Settings',
  b: '',
  e: '',
  nav: '',
});

/** `Pbx.Trunk` (subset of fields the fake stores; every name is a real `Pbx.Trunk` property). */
export const TRUNK_PROPS = kinds({
  i: 'Id SimultaneousCalls TunnelRemotePort',
  s: `Number AuthID Certificate CertificateExpirationDate CertificateName ConfigurationIssue E164CountryCode
      ExternalNumber OutboundCallerID PublicIPinSIP RemoteMyPhoneUriHost RemotePBXPreffix ScriptName
      SecondaryRegistrar SeparateAuthId TunnelRemoteAddr`,
  e: 'TranscriptionMode Direction IPRestriction TransportRestriction',
  b: `DisableCallTransfer DisableVideo DiversionHeader E164ProcessIncomingNumber EnableInboundCalls
      EnableOutboundCalls IsOnline PublishInfo ReceiveInfo TunnelEnabled UseSeparateAuthId`,
  x: 'AuthPassword DidNumbers Gateway InCIDFormatting Messaging OutCIDFormatting PublicInfoGroups Tags TrunkRegTimes',
  nav: 'Groups EmergencyGeoLocations ReceiveExtensions RoutingRules',
});

/** `Pbx.DidNumber`. */
export const DIDNUMBER_PROPS = kinds({ i: 'TrunkId', s: 'Number TemplateFileName', nav: 'RoutingRule', b: '', e: '', x: '' });

/** `Pbx.InboundRule`. */
export const INBOUNDRULE_PROPS = kinds({
  i: 'Id',
  s: 'CustomData Data RuleName',
  e: 'CallType Condition',
  b: 'AlterDestinationDuringHolidays AlterDestinationDuringOutOfOfficeHours',
  x: 'HolidaysDestination Hours OfficeHoursDestination OutOfOfficeHoursDestination',
  nav: 'TrunkDN',
});

/** `Pbx.Peer`. */
export const PEER_PROPS = kinds({ i: 'Id', s: 'Name Number', e: 'Type', b: 'Hidden', x: 'Tags', nav: 'MemberOf' });

/** `Pbx.PhoneTemplate`. */
export const TEMPLATE_PROPS = kinds({
  i: 'MaxQueueCustomRingtones',
  s: 'Content DefaultQueueRingTone Id URL',
  e: 'TemplateType',
  b: 'AddAllowed AllowSSLProvisioning HotdeskingAllowed IsCustom RpsEnabled XferTypeEnabled',
  x: `AllowedNetConfigs BacklightTimeouts Codecs DateFormats Languages Models PowerLedSettings QueueRingTones
      RingTones ScreenSaverTimeouts TimeFormats TimeZones`,
  nav: '',
});

/** `Pbx.DeviceInfo`. */
export const DEVICEINFO_PROPS = kinds({
  i: 'Id',
  s: 'AssignedUser DetectedAt FirmwareVersion InterfaceLink MAC Model NetworkAddress NetworkPath Parameters SbcName TemplateName UserAgent Vendor',
  b: 'Assigned ViaSBC',
  e: '',
  x: '',
  nav: '',
});

/** The seven V20 role identifiers used in `Rights.RoleName`. */
export const ROLE_NAMES = [
  'users',
  'receptionists',
  'group_admins',
  'managers',
  'group_owners',
  'system_admins',
  'system_owners',
] as const;

/** Numbers a real PBX refuses as extensions because they dial emergency services. */
export const EMERGENCY_NUMBERS = ['911', '112', '15', '17', '18', '999'];

/** A stored department membership of a user (`Pbx.UserGroup` minus the computed fields). */
export interface StoredMembership {
  /** Membership row id (stable while the user stays in the group). */
  Id: number;
  GroupId: number;
  /** `Pbx.Rights`; always has a valid `RoleName`. */
  Rights: { RoleName: string; [flag: string]: unknown };
}

/** A stored phone attached to a user (`Pbx.Phone`). */
export interface XapiPhone {
  Id: number;
  /** 12 lower-case hex digits, no separators. */
  MacAddress: string;
  TemplateName: string;
  Name: string;
  Interface: string;
  ProvisioningLinkExt: string;
  ProvisioningLinkLocal: string;
  Settings: Record<string, unknown>;
}

/**
 * A stored user as the fake keeps it: every `Pbx.User` scalar plus the navigation lists.
 * Tests may read and mutate these directly (that is "changing the PBX by hand").
 */
export interface XapiUser {
  Id: number;
  Number: string;
  FirstName: string;
  LastName: string;
  EmailAddress: string;
  Groups: StoredMembership[];
  Phones: XapiPhone[];
  ForwardingProfiles: Array<Record<string, unknown>>;
  ForwardingExceptions: Array<Record<string, unknown>>;
  Greetings: Array<Record<string, unknown>>;
  [prop: string]: unknown;
}

/** A stored department (`Pbx.Group`). */
export interface XapiGroup {
  Id: number;
  Number: string;
  Name: string;
  IsDefault: boolean;
  [prop: string]: unknown;
}

/** A stored trunk (`Pbx.Trunk`); `Gateway.Name` is its display name. */
export interface XapiTrunk {
  Id: number;
  Number: string;
  DidNumbers: string[];
  Gateway: { Name: string; [k: string]: unknown };
  [prop: string]: unknown;
}

/** Where one DID is routed (what `Trunks/Pbx.SetRoutes` writes). */
export interface DidRoute {
  /** DN id of the destination (a user's `Id`). */
  DnId: number;
  TrunkId: number;
  DisplayName: string | null;
  /** Id of the inbound rule that the fake shows as `DidNumbers.RoutingRule.Id`. */
  RuleId: number;
}

/** A phone template (`Pbx.PhoneTemplate`), keyed by its string `Id`. */
export interface XapiPhoneTemplate {
  Id: string;
  Models: Array<{ Name: string; UserAgent: string; URL: string; AddAllowed: boolean; CanBeSBC: boolean }>;
  [prop: string]: unknown;
}

/** A plug-and-play detected device (`Pbx.DeviceInfo`); `Assigned`/`AssignedUser` are computed. */
export interface XapiDeviceInfo {
  Id: number;
  /** 12 lower-case hex digits. */
  MAC: string;
  Model: string;
  Vendor: string;
  TemplateName: string;
  [prop: string]: unknown;
}
