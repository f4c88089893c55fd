"""How the EHR gets a user into the viewer: IHE Invoke Image Display, a signed EHR context,
SMART App Launch, single sign-on, and the embedding policy for the EHR's frame."""
