"""How the EHR gets a user into the viewer (IHE IID, signed context, SMART): see issue 5."""
